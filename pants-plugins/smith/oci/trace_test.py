"""smith trace's recorder and what a trace keeps: real fanotify on a real overlay (root), hostile
trace files and paths, symlink loops and escapes, caps, determinism, hints of a failed replay."""
import json
import os
import random
import shutil
import struct
import subprocess
import sys

import pytest

import smith
from smith import linux
from smith.elf.closure import Closure
from smith.errors import SmithError
from smith.oci import trace
from smith.testutil import hostile_json
from smith.testutil.debian import require_tools, tool_env

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
LDSO = "/usr/lib64/ld-linux-x86-64.so.2"


# -- paths and trace files ------------------------------------------------------------------------
@pytest.mark.parametrize("raw,expected", [
    ("/usr/lib/python3.11/os.py", "/usr/lib/python3.11/os.py"),
    ("/etc/a\nb \"q\" \\x41 'z'", "/etc/a\nb \"q\" \\x41 'z'"),  # names are bytes, never parsed
    ("/proc/self/maps", None), ("/dev/null", None), ("/sys/x", None), ("/run/pex/x", None),
    ("/read/config.yaml", None), ("/write/data", None), ("/", None),
    ("/var/lib/smith/c/100000/root/etc/passwd", None),  # the runtime, from the host side
    ("anon_inode:[eventfd]", None), ("pipe:[1]", None), ("/a/../etc/shadow", None),
    ("/a//b", None), ("/a/./b", None), ("/x\0y", None), ("/" + "a" * 5000, None),
])
def test_container_path(raw, expected):
    assert trace.container_path(raw, ["/var/lib/smith/c/100000/root"]) == expected


def test_a_trace_is_the_same_whatever_order_the_events_came_in():
    paths = ["/usr/bin/python3.11", "/etc/x\ny", "/usr/lib/libc.so.6", "/opt/a b"]
    outs = set()
    for seed in range(5):
        t = trace.Trace()
        shuffled = paths * 3
        random.Random(seed).shuffle(shuffled)
        for p in shuffled:
            t.add(p, p == "/usr/bin/python3.11")
        outs.add(t.to_json())
    assert len(outs) == 1


def test_trace_files_round_trip_odd_names(tmp_path):
    t = trace.Trace(["/etc/a\nb", "/opt/\"q\"\\", "/usr/bin/x\u00e9"], ["/usr/bin/x\u00e9"])
    (tmp_path / "t.json").write_bytes(t.to_json())
    back = trace.load_trace(str(tmp_path / "t.json"))
    assert back.paths == t.paths and back.executed == t.executed


def _doc(**kw):
    doc = {"version": 1, "paths": ["/a"], "executed": []}
    doc.update(kw)
    return json.dumps(doc)


@pytest.mark.parametrize("content,message", [
    ("{not json", "not a trace written by `smith trace`"),
    ("[]", "not a version 1 trace"),
    (_doc(version=2), "not a version 1 trace"),
    (_doc(paths="/a"), "`paths` must be a list of paths"),
    (_doc(paths=[1]), "paths[0] is int, not a path string"),
    (_doc(paths=["relative"]), "paths[0] 'relative' is not an absolute, normalised image path"),
    (_doc(paths=["/a/../../etc/passwd"]), "is not an absolute, normalised image path"),
    (_doc(paths=["/proc/1/environ"]), "is not an absolute, normalised image path"),
    (_doc(paths=["/a\u0000b"]), "is not an absolute, normalised image path"),
    (_doc(executed=["/b"]), "executed path '/b' is not among `paths`"),
    (hostile_json.deeply_nested().decode(), hostile_json.DEEP_MESSAGE),
])
def test_hostile_trace_files_are_refused(tmp_path, content, message):
    (tmp_path / "t.json").write_text(content)
    with pytest.raises(SmithError, match=None) as e:
        trace.load_trace(str(tmp_path / "t.json"))
    assert message in str(e.value)


def test_huge_traces_hit_the_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(trace, "MAX_PATHS", 10)
    (tmp_path / "t.json").write_text(_doc(paths=["/p%d" % i for i in range(11)]))
    with pytest.raises(SmithError, match="holds 11 paths, more than the cap of 10"):
        trace.load_trace(str(tmp_path / "t.json"))
    t = trace.Trace()
    for i in range(10):
        t.add("/p%d" % i, False)
    t.add("/p0", False)  # seen before: no new entry
    with pytest.raises(SmithError, match="more than 10 distinct paths"):
        t.add("/p10", False)
    monkeypatch.setattr(trace, "MAX_TRACE_BYTES", 100)
    (tmp_path / "big.json").write_text(_doc(paths=["/" + "x" * 200]))
    with pytest.raises(SmithError, match="larger than 100 bytes"):
        trace.load_trace(str(tmp_path / "big.json"))


def test_glibcs_own_dlopens_are_not_recorded():
    """Seen: one trace of examples/pyapp in four lacked libgcc_s.so.1 (the shutdown thread exited
    after the process); the minimizer keeps it with libc anyway, so traces must not differ on it."""
    with_it, without = trace.Trace(), trace.Trace()
    for t in (with_it, without):
        t.add("/usr/lib/x86_64-linux-gnu/libc.so.6", False)
    with_it.add("/usr/lib/x86_64-linux-gnu/libgcc_s.so.1", False)
    assert with_it.to_json() == without.to_json()
    with_it.add("/usr/bin/libgcc_s.so.1", True)  # executed: a program, kept as traced
    assert "/usr/bin/libgcc_s.so.1" in with_it.executed


def test_fanotify_events_are_parsed_whole_and_checked():
    one = struct.pack("=IBBHQii", 24, 3, 0, 24, trace.FAN_OPEN, 7, 42)
    events, used = trace.parse_events(one + one[:10])  # a torn second event waits
    assert events == [(trace.FAN_OPEN, 7)] and used == 24
    with pytest.raises(SmithError, match="version 2"):
        trace.parse_events(struct.pack("=IBBHQii", 24, 2, 0, 24, 0, -1, 0))
    with pytest.raises(SmithError, match="malformed event"):
        trace.parse_events(struct.pack("=IBBHQii", 3, 3, 0, 24, 0, -1, 0))


# -- what a trace keeps ---------------------------------------------------------------------------
@pytest.fixture()
def root(tmp_path):
    """A merged-/usr root with the host's ls and libc (the program the closure starts from)."""
    r = tmp_path / "root"
    for path in ["/usr/bin/ls", LIBC, LDSO, "/usr/lib/x86_64-linux-gnu/libselinux.so.1",
                 "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0", "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
                 "/usr/lib/x86_64-linux-gnu/libz.so.1"]:
        dest = r / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), str(dest))
    for link, target in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")]:
        os.symlink(target, str(r / link))
    (r / "usr/lib/python3/__pycache__").mkdir(parents=True)
    (r / "usr/lib/python3/os.py").write_text("")
    (r / "usr/lib/python3/__pycache__/os.cpython-311.pyc").write_bytes(b"pyc")
    (r / "usr/lib/python3/unused.py").write_text("")
    (r / "etc").mkdir()
    (r / "etc/conf").write_text("x")
    os.symlink("conf", str(r / "etc/conf.link"))
    os.symlink("/etc/conf", str(r / "etc/conf.abs"))
    os.symlink("loop", str(r / "etc/loop"))
    os.symlink("../../../../../etc/passwd", str(r / "etc/escape"))
    os.symlink("/usr/lib/x86_64-linux-gnu/libz.so.1", str(r / "usr/lib/libz-link.so"))
    return r


def _kept(root, paths, executed=()):
    closure = Closure(str(root), {})
    closure.add_program("/usr/bin/ls")
    warnings = []
    kept = trace.kept_by_trace(closure, [trace.Trace(paths, executed)], warnings.append)
    return kept, warnings


def test_traced_files_links_to_them_closures_and_glibc_dlopens_are_kept(root):
    kept, warnings = _kept(root, ["/etc/conf", "/usr/lib/python3/__pycache__/os.cpython-311.pyc",
                                  "/usr/lib/x86_64-linux-gnu/libz.so.1", "/nonexistent"])
    assert {"/etc/conf", "/etc/conf.link", "/etc/conf.abs",            # links that lead to it
            "/usr/lib/python3/os.py",                                   # the .pyc's source
            "/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/libz-link.so",
            "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",                  # glibc's own dlopen
            "/usr/bin/ls", "/lib64", LDSO} <= kept
    assert "/usr/lib/python3/unused.py" not in kept and "/nonexistent" not in kept
    assert "/etc/loop" not in kept and "/etc/escape" not in kept  # lead nowhere inside the image
    assert warnings == []


def test_traced_paths_through_loops_and_escapes_are_not_followed(root):
    kept, warnings = _kept(root, ["/etc/loop", "/etc/escape", "/etc/loop/x"])
    assert not {"/etc/loop", "/etc/escape"} & kept
    assert any("/etc/loop" in w for w in warnings) and any("/etc/escape" in w for w in warnings)
    assert not any(p.startswith("/etc/passwd") for p in kept)


def test_the_stdlib_landmark_of_a_kept_python_lib_dir_is_kept(root):
    """os.py, which CPython's getpath stats (never opens) to find its prefix."""
    lib = root / "usr/lib/python3.11"
    (lib / "json/__pycache__").mkdir(parents=True)
    (lib / "json/__init__.py").write_text("")
    (lib / "json/__pycache__/__init__.cpython-311.pyc").write_bytes(b"pyc")
    (lib / "os.py").write_text("")
    kept, _ = _kept(root, ["/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc"])
    assert "/usr/lib/python3.11/os.py" in kept
    assert "/usr/lib/python3/os.py" not in kept  # no kept path under that one
    assert trace.python_landmarks(["/usr/lib/python3.11/x.py", "/opt/lib/python3.9/a/b",
                                   "/usr/lib/python3/x", "/usr/lib/python3.11"]) == {
        "/usr/lib/python3.11/os.py", "/opt/lib/python3.9/os.py"}


def test_an_executed_program_gets_its_closure(root):
    (root / "usr/bin/ls").rename(root / "usr/bin/other")
    shutil.copy2(os.path.realpath("/usr/bin/ls"), str(root / "usr/bin/ls"))
    kept, _ = _kept(root, ["/usr/bin/other"], executed=["/usr/bin/other"])
    assert "/usr/bin/other" in kept and "/usr/lib/x86_64-linux-gnu/libselinux.so.1" in kept


def test_hints_name_what_a_failed_replay_missed():
    output = """FAIL //x:t: the service exited with code 1 before it was ready
Traceback (most recent call last):
ModuleNotFoundError: No module named 'yaml._yaml'
/usr/bin/python3.11: error while loading shared libraries: libpthread.so.0: cannot open shared object file: No such file or directory
libgcc_s.so.1 must be installed for pthread_exit to work
FileNotFoundError: [Errno 2] No such file or directory: '/etc/ssl/certs/ca.pem'
ModuleNotFoundError: No module named 'yaml._yaml'
"""
    assert trace.missing_hints(output) == [
        "Python module 'yaml._yaml'", "shared library libpthread.so.0", "shared library libgcc_s.so.1",
        "file /etc/ssl/certs/ca.pem"]
    assert trace.missing_hints("FAIL: status 500, expected 200") == []


# -- recording: real fanotify on a real overlay ---------------------------------------------------
def _overlay(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("fanotify and overlay mounts need root")
    require_tools("busybox", "unshare")
    base = tmp_path / "ovl"
    base.mkdir()
    linux.mount("tmpfs", str(base), "tmpfs")  # overlayfs does not take every fs as a lower layer
    for d in ("lower", "empty", "root"):
        (base / d).mkdir()
    lower = base / "lower"
    shutil.copy2(os.path.realpath("/bin/busybox"), str(lower / "busybox"))
    (lower / "etc").mkdir()
    (lower / "etc/conf").write_text("hi\n")
    (lower / "etc/unused").write_text("no\n")
    os.symlink("etc/conf", str(lower / "conf.link"))
    (lower / "old").mkdir()
    (lower / "proc").mkdir()
    linux.mount("overlay", str(base / "root"), "overlay", linux.MS_RDONLY,
                "lowerdir=%s:%s" % (lower, base / "empty"))
    return base


def _run_in_root(root):
    """The busybox of `root` as a container would run it: pivot_root into it, old root gone."""
    script = ("/busybox umount -l /old && /busybox mount -t proc proc /proc && "
              "/busybox cat /conf.link /proc/self/stat && /busybox ls /etc")
    subprocess.run(["unshare", "-m", "--propagation", "private", "--", str(root / "busybox"), "sh", "-c",
                    "cd %s && ./busybox pivot_root . old && exec /busybox sh -c '%s'" % (root, script)],
                   check=True, env=tool_env(), cwd=str(root), stdout=subprocess.DEVNULL)


def _record(base):
    recorder = trace.Recorder()
    recorder.watch(None, str(base / "root"))
    _run_in_root(base / "root")
    return recorder.stop()


def test_recorder_sees_what_the_container_opens_and_executes_as_the_container_sees_it(tmp_path):
    base = _overlay(tmp_path)
    try:
        got = _record(base)
        assert got.paths == {"/busybox", "/etc/conf", "/etc"}  # not /etc/unused, not /proc, not /old
        assert got.executed == {"/busybox"}
        again = _record(base)
        assert again.to_json() == got.to_json()  # traced twice: the same trace
    finally:
        linux.umount(str(base / "root"), detach=True)
        linux.umount(str(base), detach=True)


def test_a_recorder_ignores_containers_of_other_images(tmp_path):
    base = _overlay(tmp_path)
    try:
        recorder = trace.Recorder(str(tmp_path / "the-image"))
        recorder.watch(str(tmp_path / "a-client-image"), str(base / "root"))
        _run_in_root(base / "root")
        assert recorder.stop().paths == set() and recorder.roots == []
    finally:
        linux.umount(str(base / "root"), detach=True)
        linux.umount(str(base), detach=True)


# -- smith trace around a real launcher run -------------------------------------------------------
def _smith(*args, cwd):
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    return subprocess.run([sys.executable, "-m", "smith", *map(str, args)], cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def busybox_image(tmp_path_factory):
    """A one-layer image: a static busybox, a file it reads and one it never touches."""
    if os.geteuid() != 0:
        pytest.skip("running containers and fanotify need root")
    require_tools("busybox", "runc")
    tmp = tmp_path_factory.mktemp("bb")
    root = tmp / "root"
    (root / "etc").mkdir(parents=True)
    shutil.copy2(os.path.realpath("/bin/busybox"), str(root / "busybox"))
    (root / "etc/conf").write_text("hello\n")
    (root / "etc/unused").write_text("no\n")
    (tmp / "cfg.json").write_text(json.dumps({"entrypoint": ["/busybox"]}))
    for args in (("layer", "--output", "layer", "--dir", "/=root"),
                 ("image", "--output", "layout", "--tag", "latest", "--config", "cfg.json", "--layer", "layer")):
        proc = _smith(*args, cwd=tmp)
        assert proc.returncode == 0, proc.stderr
    return tmp


def _trace_cat(image, tmp_path, layout, *expect):
    return _smith("trace", "--output", tmp_path / "t.json", "--image", layout, "--", "launch", "test",
                  "--layout", image / "layout", "--runtime", "runc", *expect, "--", "cat", "/etc/conf",
                  cwd=tmp_path)


def test_smith_trace_records_a_launcher_test(busybox_image, tmp_path):
    proc = _trace_cat(busybox_image, tmp_path, busybox_image / "layout", "--expect-stdout", "hello")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "smith trace: 2 paths (1 executed)" in proc.stdout
    got = trace.load_trace(str(tmp_path / "t.json"))
    assert got.paths == {"/busybox", "/etc/conf"} and got.executed == {"/busybox"}


def test_smith_trace_of_a_failing_test_or_another_image_writes_nothing(busybox_image, tmp_path):
    proc = _trace_cat(busybox_image, tmp_path, busybox_image / "layout", "--expect-stdout", "bye")
    assert proc.returncode == 1 and "FAIL" in proc.stdout
    assert "smith trace: error: the test failed on the traced image" in proc.stderr
    other = busybox_image / "other-layout"  # another image: its containers are the ones traced
    if not other.exists():
        shutil.copytree(str(busybox_image / "layout"), str(other))
    proc = _trace_cat(busybox_image, tmp_path, other)
    assert proc.returncode == 1 and "no container of %s was started" % other in proc.stderr
    proc = _trace_cat(busybox_image, tmp_path, tmp_path / "missing-layout")
    assert proc.returncode == 1 and "%s does not exist" % (tmp_path / "missing-layout") in proc.stderr
    assert os.listdir(str(tmp_path)) == []
    proc = _smith("trace", "--output", "t.json", "--image", "x", "--", "minimize", "x", cwd=tmp_path)
    assert proc.returncode == 1 and "must be `launch service ...` or `launch test ...`" in proc.stderr


def test_warnings_about_traced_paths_are_printed_escaped(root, capsys):
    """`smith minimize --trace` warns about a traced path it cannot follow, quoting the path the
    workload opened (the image's name): an OSC in it reached the terminal as is before."""
    from smith.oci import minimize
    evil = "/etc/\x1b]2;owned\x07loop"
    os.symlink(os.path.basename(evil), str(root) + evil)
    minimize._kept_by_traces(str(root), "/usr/bin/ls", {}, False, [trace.Trace([evil], ())])
    err = capsys.readouterr().err
    assert "warning: traced path /etc/\\x1b]2;owned\\x07loop: " in err and "\x1b" not in err, err
