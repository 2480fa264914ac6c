"""End to end: `python -m smith.launch` runs busybox images with runc, as root."""
import locale  # noqa: F401  (argparse imports it lazily; a test below drops root first)
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

from smith.launch import cli, run_cli  # noqa: F401  (imported before dropping root)
from smith.oci.docker_archive import write_docker_archive
from smith.oci.image_source import open_image
from smith.testutil.launch import busybox_image, launch_cmd, leftovers, remove_store, smith_env
from smith.testutil.debian import require_tools


@pytest.fixture(scope="module")
def layout():
    require_tools("runc", "busybox")
    return busybox_image()


def launch(store, layout, *args, mode="run", stdin=None, timeout=60):
    argv = launch_cmd(mode, "--layout", layout + ":latest", "--store", store, *args)
    return subprocess.run(argv, env=smith_env(), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


def sh(store, layout, script, *args, **kw):
    return launch(store, layout, *args, "--", "sh", "-c", script, **kw)


def test_default_command_and_exit_code(store, layout):
    proc = launch(store, layout)
    assert (proc.returncode, proc.stdout) == (0, b"hello from busybox\n"), proc.stderr
    proc = sh(store, layout, "exit 3")
    assert proc.returncode == 3


def test_user_ids_and_mapping(store, layout):
    proc = sh(store, layout, "id -u; id -g; stat -c '%u:%g' /bin/busybox /write /run; "
                             "stat -c %a /write; cat /proc/self/uid_map /proc/self/gid_map")
    lines = proc.stdout.decode().split("\n")
    assert proc.returncode == 0, proc.stderr
    assert lines[:6] == ["10", "10", "10:10", "10:10", "10:10", "700"]
    uid_map, gid_map = lines[6].split(), lines[7].split()
    assert uid_map[0] == "0" and uid_map[2] == "65536" and int(uid_map[1]) >= 100000
    assert gid_map == uid_map


def test_root_is_read_only(store, layout):
    proc = sh(store, layout, "touch /x; touch /bin/y; echo hi > /write/ok && echo wrote; "
                             "echo t > /run/t && echo ran")
    err = proc.stderr.decode()
    assert "touch: /x: Read-only file system" in err
    assert "touch: /bin/y: Read-only file system" in err
    assert proc.stdout == b"wrote\nran\n"


def test_writable_root_is_per_container(store, layout):
    proc = sh(store, layout, "echo hi > /bin/x && cat /bin/x; stat -c '%u %a' /", "--writable-root")
    assert (proc.returncode, proc.stdout) == (0, b"hi\n0 755\n"), proc.stderr
    proc = sh(store, layout, "test -e /bin/x && echo leaked || echo clean", "--writable-root")
    assert proc.stdout == b"clean\n"


def test_whole_command_replaces_the_entrypoint(store, layout):
    proc = launch(store, layout, "--whole-command", "--", "/bin/busybox", "echo", "direct")
    assert proc.stdout == b"direct\n", proc.stderr
    proc = launch(store, layout, "--whole-command", "--", "echo", "x")  # no entrypoint: no `echo`
    assert proc.returncode != 0 and b"echo" in proc.stderr


def test_env_workdir_and_stdin(store, layout):
    proc = sh(store, layout, "echo $FOO $PATH; pwd; cat", "--env", "FOO=bar", stdin=b"from stdin")
    assert proc.stdout == b"bar /bin\n/\nfrom stdin", proc.stderr


def test_read_dir_is_read_only_and_owned_as_on_the_host(store, layout, tmp_path):
    read = tmp_path / "read"
    read.mkdir()
    (read / "conf").write_text("setting=1\n")
    os.chmod(read / "conf", 0o640)  # root's file, group-readable only: root inside reads it
    os.chmod(tmp_path, 0o711)
    proc = launch(store, layout, "--read", str(read), "--", "sh", "-c",
                  "stat -c '%u %a' /read/conf; echo x > /read/new || echo refused")
    assert proc.stdout == b"0 640\nrefused\n", proc.stderr
    assert b"Read-only file system" in proc.stderr
    assert sorted(os.listdir(read)) == ["conf"]


def test_write_dir_kept_when_given(store, layout, tmp_path):
    keep = tmp_path / "keep"
    os.chmod(tmp_path, 0o711)
    proc = sh(store, layout, "echo data > /write/out", "--write", str(keep))
    assert proc.returncode == 0, proc.stderr
    assert (keep / "out").read_text() == "data\n"
    st = os.stat(keep / "out")
    assert st.st_uid >= 100000 + 10 and (st.st_uid - 10) % 65536 == 100000 % 65536


def test_network_none_has_only_loopback_up(store, layout):
    proc = sh(store, layout, "ls /sys/class/net; cat /sys/class/net/lo/flags")
    assert proc.stdout == b"lo\n0x9\n", proc.stderr  # IFF_UP | IFF_LOOPBACK
    proc = sh(store, layout, "ls /sys/class/net", "--network", "host")
    assert sorted(proc.stdout.split()) == sorted(n.encode() for n in os.listdir("/sys/class/net"))


def test_timeout_kills_the_container(store, layout):
    start = time.monotonic()
    proc = sh(store, layout, "sleep 60", "--timeout", "1")
    assert proc.returncode == 124
    assert time.monotonic() - start < 15
    assert b"--timeout" in proc.stderr


def test_signals_are_forwarded(store, layout):
    argv = launch_cmd("run", "--layout", layout, "--store", store, "--", "sh", "-c",
                      "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done")
    proc = subprocess.Popen(argv, env=smith_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, out) == (7, b"got TERM\n"), err


def test_test_mode_reports_pass_and_fail(store, layout):
    proc = launch(store, layout, "--expect-stdout", "^hello from", mode="test")
    assert proc.returncode == 0 and proc.stdout.startswith(b"PASS"), proc.stdout + proc.stderr
    proc = launch(store, layout, "--expect-stdout", "^goodbye", "--expect-exit", "2", mode="test")
    out = proc.stdout.decode()
    assert proc.returncode == 1
    assert "FAIL" in out and "exit code 0, expected 2" in out and "does not match '^goodbye'" in out
    assert "hello from busybox" in out  # the container's output is shown
    proc = launch(store, layout, "--expect-stderr", "oops", "--", "sh", "-c", "echo oops >&2",
                  mode="test")
    assert proc.returncode == 0, proc.stdout


def test_errors_a_user_can_cause(store, layout, tmp_path):
    proc = subprocess.run(launch_cmd("run", "--layout", layout + ":nope", "--store", store),
                          env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"no image tagged 'nope'" in proc.stderr
    proc = launch(store, layout, "--bogus")
    assert proc.returncode == 2 and b"unrecognized arguments: --bogus" in proc.stderr
    proc = launch(store, layout, "--runtime", "/nonexistent/runc")
    assert proc.returncode == 1 and b"--runtime" in proc.stderr
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    proc = launch(str(hidden / "store"), layout)
    assert proc.returncode == 1 and b"not searchable by other users" in proc.stderr


def test_not_root_is_a_clear_error(layout, tmp_path):
    # The interpreter may not be executable by other users: drop root in a fork of this one.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:  # the child of a fork: whatever happens, it must not return into pytest
            sys.stderr = os.fdopen(w, "w")
            os.setgid(65534)
            os.setuid(65534)
            code = cli.main(["run", "--layout", layout, "--store", str(tmp_path / "s")])
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(w)
    err = os.read(r, 65536)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 1, err
    assert b"needs root" in err


def test_next_launch_cleans_up_after_a_killed_launcher(store, layout):
    argv = launch_cmd("run", "--layout", layout, "--store", store, "--", "sh", "-c", "echo up; read x")
    victim = subprocess.Popen(argv, env=smith_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        assert victim.stdout.readline() == b"up\n"
        victim.kill()  # SIGKILL: no cleanup of its own; its container keeps running
        victim.wait()
        assert len(leftovers(store)) >= 3  # mount, id range, container dir (and the container)
        proc = launch(store, layout, "--verbose")
    finally:
        victim.stdin.close()
    assert proc.returncode == 0, proc.stderr
    assert b"cleaning up container" in proc.stderr
    # the store fixture checks that nothing of either container is left


def test_tty_is_passed_through(store, layout):
    master, slave = os.openpty()
    proc = subprocess.Popen(launch_cmd("run", "--tty", "--layout", layout, "--store", store, "--",
                                       "sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; tty"),
                            env=smith_env(), stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer of the pty is gone
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, out
    assert out.startswith(b"is-a-tty\r\n/dev/pts/0\r\n"), out


def test_inside_a_user_namespace_is_a_clear_error(layout, tmp_path):
    argv = ["unshare", "--user", "--map-root-user"] + launch_cmd(
        "run", "--layout", layout, "--store", str(tmp_path / "s"))
    proc = subprocess.run(argv, env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 1, proc.stderr
    assert b"runs in a user namespace" in proc.stderr


def test_many_layers_fit_the_overlay_options(store):
    # 41 layers: their absolute store paths (~110 bytes each) would overflow the one-page mount
    # data; the overlay is mounted from the container dir with short relative names.
    many = busybox_image([({"data/f%02d" % i: str(i)}, []) for i in range(40)])
    assert len(open_image(many).layers) >= 41
    proc = launch(store, many, "--", "sh", "-c", "ls /data | wc -l; cat /data/f00 /data/f39")
    assert proc.stdout.split() == [b"40", b"039"], proc.stderr


@pytest.mark.parametrize("base_files", [
    None,  # one layer without mount points: the launcher adds a layer of empty directories
    {d + "/.keep": "" for d in ("dev", "proc", "read", "run", "sys", "write")},  # one complete layer
])
def test_single_layer_images_without_skeleton(store, base_files, tmp_path):
    bare = busybox_image(skeleton=False, base_files=base_files)
    assert len(open_image(bare).layers) == 1
    read = tmp_path / "r"
    read.mkdir()
    (read / "f").write_text("config")
    proc = launch(store, bare, "--read", str(read), "--", "sh", "-c",
                  "cat /read/f; echo x > /write/y && echo wrote; touch /z")
    assert proc.stdout == b"configwrote\n", proc.stderr
    assert b"/z: Read-only file system" in proc.stderr
    added = os.path.join(store, "layers", "mountpoints", "dev+proc+read+run+sys+write")
    assert os.path.isdir(added) == (base_files is None)
    # overlayfs needs two lower dirs without an upper one: a complete single layer gets an empty one
    assert os.path.isdir(os.path.join(store, "empty")) == (base_files is not None)


def test_tar_sources_share_the_layers_of_the_layout(store, layout, tmp_path):
    oci_tar = tmp_path / "oci.tar"
    with tarfile.open(str(oci_tar), "w") as tar:
        tar.add(layout, arcname=".")
    archive = tmp_path / "docker.tar"
    write_docker_archive(layout, "latest", str(archive))
    runs = [launch(store, layout, "--verbose"),
            subprocess.run(launch_cmd("run", "--verbose", "--layout", str(oci_tar) + ":latest",
                                      "--store", store), env=smith_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE),
            subprocess.run(launch_cmd("run", "--verbose", "--layout", str(archive), "--store", store),
                           env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    assert [r.stdout for r in runs] == [b"hello from busybox\n"] * 3, [r.stderr for r in runs]
    layers = len(open_image(layout).layers)
    assert [(r.stderr.count(b"unpacked layer"), r.stderr.count(b"reusing layer")) for r in runs] == \
        [(layers, 0), (0, layers), (0, layers)]


def test_store_path_with_overlay_option_characters(layout):
    # ',' ':' and ' ' would break an overlay option string of absolute paths; ours are relative.
    odd = tempfile.mkdtemp(prefix="smith launch,odd:", dir="/tmp")
    os.chmod(odd, 0o711)
    try:
        proc = sh(odd, layout, "echo ok > /bin/f && cat /bin/f", "--writable-root")
        assert proc.stdout == b"ok\n", proc.stderr
        assert leftovers(odd) == []
    finally:
        remove_store(odd)
