"""crashcart against live containers of runc and of smith-runtime (the zipapp): a busybox
httpd serving over the container's loopback, with a read-only root and no libc at all, so
every tool that works must have come, with its libc, from the toolbox."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from smith.testutil import crashcart as testing
from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools, tool_env

FETCH = ('exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET /etc/passwd HTTP/1.0\\r\\n\\r\\n" >&3; '
         'cat <&3')
NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "cgroup", "user")


@pytest.fixture(scope="module")
def toolbox():
    return testing.cached_toolbox()


class Container:
    def __init__(self, runtime, binary, root, cid):
        self.runtime, self.binary, self.root, self.cid = runtime, binary, root, cid
        self.root_flag = "--runc-root" if runtime == "runc" else "--runtime-root"

    def state(self):
        return json.loads(tb.runtime(self.binary, self.root, "state", self.cid).stdout)

    @property
    def pid(self):
        return self.state()["pid"]

    def crashcart(self, toolbox, *args, **kw):
        return testing.crashcart("--toolbox", toolbox, self.root_flag, self.root, *args, **kw)

    def fetch_inside(self):
        """GET /etc/passwd from the server with the container's own busybox (runtime exec)."""
        return tb.runtime(self.binary, self.root, "exec", self.cid, "wget", "-qO-",
                          "http://127.0.0.1:8080/etc/passwd").stdout


# smith-runtime leaves loopback down (runc brings it up), so pid 1 does it, then becomes httpd.
HTTPD = ("sh", "-c", "ip link set lo up && exec httpd -f -p 8080 -h /")


def _net_admin(config):
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind].append("CAP_NET_ADMIN")


def start(tmp, runtime, name, args=HTTPD, edit=None, run_flags=()):
    require_tools("runc", "busybox")
    binary = "runc" if runtime == "runc" else tb.cached_zipapp()

    def edits(config):
        _net_admin(config)
        if edit:
            edit(config)
    bundle = tb.bundle(str(tmp / ("bundle-" + name)), args=list(args), edit=edits)
    root = str(tmp / ("root-" + name))
    cid = "cc-%s-%d" % (name, os.getpid())
    res = tb.runtime(binary, root, "run", "-d", *run_flags, cid, cwd=bundle, detached=True)
    assert res.returncode == 0
    c = Container(runtime, binary, root, cid)
    c.init = (c.pid, testing.start_time(c.pid))
    if args == HTTPD:
        deadline = time.monotonic() + 10
        while "smith:x:10" not in c.fetch_inside():
            assert time.monotonic() < deadline, "httpd never served"
            time.sleep(0.05)
    return c


def stop(c):
    tb.runtime(c.binary, c.root, "delete", "--force", c.cid)
    # If the state dir vanished meanwhile (a concurrent pytest prunes old basetemps), the
    # runtime cannot find the container: never leave its init running.
    pid, started = c.init
    if started is not None and testing.start_time(pid) == started:
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module", params=["runc", "smith"])
def container(request, tmp_path_factory):
    c = start(tmp_path_factory.mktemp("cc"), request.param, "web-" + request.param)
    yield c
    stop(c)


def mountinfo(pid):
    with open("/proc/%d/mountinfo" % pid) as f:
        return f.read()


def dev_mounts(pid):
    """The mounts at or below /dev of a process: all that crashcart may touch. A process that
    shares the host's mounts (a private copy of them) also sees other tests' mounts come and go."""
    return [line for line in mountinfo(pid).splitlines()
            if line.split()[4] == "/dev" or line.split()[4].startswith("/dev/")]


def host_crashcart_mounts():
    """The host's mounts that involve crashcart (toolbox path or mount point); other tests on
    this machine may mount and unmount other things meanwhile."""
    return [line for line in mountinfo(os.getpid()).splitlines() if "crashcart" in line]


def test_debug_tools_see_the_container(container, toolbox):
    pid = container.pid
    before = (host_crashcart_mounts(), mountinfo(pid))
    script = "; ".join([
        "ls -l /proc/1/exe", "echo ==", "cat /proc/1/status", "echo ==", "ps -e -o pid=,comm=",
        "echo ==", "id -u; id -g", "echo ==",
        "for n in %s; do readlink /proc/self/ns/$n; done" % " ".join(NAMESPACES),
        "echo ==", "cat /proc/self/cgroup", "echo ==", "cat /proc/1/cgroup", "echo ==", FETCH,
        "echo ==", "timeout -s INT 1 strace -p 1 2>&1; exit 7"])
    res = container.crashcart(toolbox, container.cid, "--", "bash", "-c", script)
    assert res.returncode == 7, res.stderr
    parts = res.stdout.split("==\n")
    assert parts[0].strip().endswith("/proc/1/exe -> " + os.readlink("/proc/%d/exe" % pid))
    with open("/proc/%d/status" % pid) as f:
        host_status = f.read()
    name = host_status.split("\n", 1)[0]
    assert parts[1].startswith(name + "\n") and "\nNSpid:" in parts[1]
    procs = [line.split() for line in parts[2].splitlines()]
    assert ["1", name.split("\t")[1]] in procs and ["1"] == [p for p, _ in procs if p == "1"]
    assert any(comm == "ps" for _, comm in procs)  # ps runs in the container's pid namespace
    assert parts[3].split() == ["0", "0"]
    assert parts[4].split() == [os.readlink("/proc/%d/ns/%s" % (pid, n)) for n in NAMESPACES]
    assert parts[5] == parts[6]  # same cgroups as the container's init
    assert "smith:x:10:10" in parts[7]  # the server answers on the container's loopback
    assert "Process 1 attached" in parts[8]
    # The container kept running and serving, and nothing of crashcart is left.
    assert container.state()["status"] == "running" and container.pid == pid
    assert "smith:x:10:10" in container.fetch_inside()
    assert (host_crashcart_mounts(), mountinfo(pid)) == before
    ls = tb.runtime(container.binary, container.root, "exec", container.cid, "ls", "/dev")
    assert "crashcart" not in ls.stdout.split()


def test_default_command_is_the_toolbox_bash(container, toolbox):
    res = container.crashcart(toolbox, container.cid, input="echo $PATH; echo $BASH; exit 3\n")
    assert res.returncode == 3, res.stderr
    assert res.stdout.split() == ["/dev/crashcart/bin", "/dev/crashcart/bin/bash"]


def test_signals_are_forwarded(container, toolbox):
    pid = container.pid
    before = mountinfo(pid)
    proc = subprocess.Popen(
        [sys.executable, "-S", "-m", "smith.crashcart", "--toolbox", toolbox,
         container.root_flag, container.root, container.cid, "--", "sleep", "97.5"],
        env=tool_env(PYTHONPATH=testing.SMITH_PARENT), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not _sleepers("97.5"):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        (sleeper,) = _sleepers("97.5")
        assert os.readlink("/proc/%d/ns/pid" % sleeper) == os.readlink("/proc/%d/ns/pid" % pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert not _sleepers("97.5")
    assert container.state()["status"] == "running" and mountinfo(pid) == before


def _sleepers(arg):
    found = []
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if f.read() == b"sleep\0" + arg.encode() + b"\0":
                    found.append(int(p))
        except OSError:
            pass
    return found


def test_mount_only_then_unmount(container, toolbox):
    pid = container.pid
    before = mountinfo(pid)
    res = container.crashcart(toolbox, "--mount-only", container.cid)
    assert res.returncode == 0, res.stderr
    mounted = [line.split() for line in mountinfo(pid).splitlines() if " /dev/crashcart " in line]
    assert len(mounted) == 1 and "ro" in mounted[0][5].split(",")
    # A command now reuses the attached toolbox and leaves it attached.
    res = container.crashcart(toolbox, container.cid, "--", "ls", "/dev/crashcart/bin/strace")
    assert res.returncode == 0 and res.stdout.strip() == "/dev/crashcart/bin/strace"
    write = container.crashcart(toolbox, container.cid, "--", "touch", "/dev/crashcart/x")
    assert write.returncode == 1 and "Read-only file system" in write.stderr
    assert " /dev/crashcart " in mountinfo(pid)
    res = container.crashcart(toolbox, "--unmount", container.cid)
    assert res.returncode == 0, res.stderr
    assert mountinfo(pid) == before
    again = container.crashcart(toolbox, "--unmount", container.cid)
    assert again.returncode == 1 and "no toolbox is attached" in again.stderr


def test_command_not_found(container, toolbox):
    res = container.crashcart(toolbox, container.cid, "--", "no-such-tool")
    assert res.returncode == 127 and "cannot run no-such-tool" in res.stderr
    assert " /dev/crashcart " not in mountinfo(container.pid)


def test_user_namespace_container(tmp_path, toolbox):
    """Container root is host uid 100000: the tool runs as that root, in its user ns."""
    def userns(config):
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    c = start(tmp_path, "runc", "userns", edit=userns)
    try:
        pid = c.pid
        script = "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; " + FETCH
        res = c.crashcart(toolbox, c.cid, "--", "bash", "-c", script)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        with open("/proc/%d/uid_map" % pid) as f:
            assert lines[0] == "0" and lines[1].split() == f.read().split()
        assert lines[2] == os.readlink("/proc/%d/ns/user" % pid)
        assert "smith:x:10:10" in res.stdout
        assert " /dev/crashcart " not in mountinfo(pid)
        ls = tb.runtime(c.binary, c.root, "exec", c.cid, "ls", "/dev")
        assert ls.returncode == 0 and "crashcart" not in ls.stdout.split()
    finally:
        stop(c)


def test_zipapp_start_path(container, toolbox, tmp_path):
    """dist/crashcart is a zipapp run by python3 -I -S: stdlib and ctypes only."""
    app = testing.build_zipapp(str(tmp_path / "crashcart"))
    res = subprocess.run([app, "--toolbox", toolbox, container.root_flag, container.root,
                          container.cid, "--", "cat", "/proc/1/cmdline"], env=tool_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert res.returncode == 0, res.stderr
    with open("/proc/%d/cmdline" % container.pid, "rb") as f:
        assert res.stdout == f.read()


@pytest.mark.parametrize("runtime", ["runc", "smith"])
def test_read_only_dev(runtime, tmp_path, toolbox):
    """/dev made read-only (runtime-spec readonlyPaths) on a read-only root: the mount point
    is made through a private writable copy of the /dev mount, and removed the same way."""
    def ro_dev(config):
        config["linux"]["readonlyPaths"].append("/dev")
    c = start(tmp_path, runtime, "rodev-" + runtime, args=("sleep", "1000"), edit=ro_dev)
    try:
        pid = c.pid
        before = mountinfo(pid)
        dev = [line.split() for line in before.splitlines() if line.split()[4] == "/dev"][-1]
        assert "ro" in dev[5].split(",")
        res = c.crashcart(toolbox, c.cid, "--", "bash", "-c",
                          "ls -d /dev/crashcart/bin; touch /dev/x; ps -o comm= -p 1")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["/dev/crashcart/bin", "sleep"]
        assert "/dev/x': Read-only file system" in res.stderr
        assert mountinfo(pid) == before
        ls = tb.runtime(c.binary, c.root, "exec", c.cid, "ls", "/dev")
        names = ls.stdout.split()
        assert ls.returncode == 0 and "crashcart" not in names and "null" in names
    finally:
        stop(c)


def test_gdb_with_its_python(tmp_path):
    """gdb attaches to the container's pid 1; its embedded Python runs from the toolbox's
    standard library (PYTHONHOME=/dev/crashcart): the container has no Python at all."""
    toolbox = testing.cached_toolbox(testing.GDB_TOOLS)
    c = start(tmp_path, "runc", "gdb", args=("sleep", "1000"))
    try:
        py = "python i = gdb.selected_inferior(); print('pid', i.pid, i.progspace.filename)"
        res = c.crashcart(toolbox, c.cid, "--", "gdb", "-p", "1", "-batch", "-ex", py)
        assert res.returncode == 0, res.stderr
        assert "pid 1 /bin/busybox" in res.stdout.splitlines()
        assert c.state()["status"] == "running"
        with open("/proc/%d/status" % c.pid) as f:
            assert "\nTracerPid:\t0\n" in f.read()  # detached again
    finally:
        stop(c)


@pytest.mark.parametrize("runtime", ["runc", "smith"])
def test_no_pivot_container(runtime, tmp_path, toolbox):
    """--no-pivot: the container's root is a chroot below its mount namespace's root; crashcart
    must use the container's root (and its /dev), not the namespace's."""
    c = start(tmp_path, runtime, "nopivot-" + runtime, args=("sleep", "1000"),
              run_flags=("--no-pivot",))
    try:
        pid = c.pid
        before = (host_crashcart_mounts(), mountinfo(pid))
        script = "ls /; echo ==; ls /dev/crashcart/bin/ps; grep crashcart /proc/self/mountinfo"
        res = c.crashcart(toolbox, c.cid, "--", "bash", "-c", script)
        assert res.returncode == 0, res.stderr
        listing, rest = res.stdout.split("==\n")
        assert sorted(listing.split()) == sorted(os.listdir(tb.busybox_rootfs()))
        assert rest.splitlines()[0] == "/dev/crashcart/bin/ps"
        assert " /dev/crashcart ro," in rest
        assert (host_crashcart_mounts(), mountinfo(pid)) == before
        assert not os.path.exists("/dev/crashcart")
    finally:
        stop(c)


def test_dev_on_a_read_only_file_system(toolbox):
    """A process whose /dev is a tmpfs mounted read-only (so no writable copy helps), with a
    submount: /dev is covered by an overlay for the session, /dev/shm is put back on top, and
    afterwards the process's mounts are exactly as before."""
    setup = ("mount -t tmpfs -o size=64k,mode=755 none /dev && mkdir /dev/shm && "
             "mount -t tmpfs -o size=64k none /dev/shm && echo hi > /dev/shm/marker && "
             "mount -o remount,ro /dev && echo ready && exec sleep 60")
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", setup],
                            env=tool_env(), stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        pid = proc.pid
        before = dev_mounts(pid)
        tools = ["--toolbox", toolbox]
        script = "cat /dev/shm/marker; ls /dev/crashcart/bin/bash; touch /dev/x"

        def check(res):
            assert res.returncode == 1  # touch: /dev stays read-only
            assert res.stdout.split() == ["hi", "/dev/crashcart/bin/bash"]
            assert "Read-only file system" in res.stderr

        check(testing.crashcart(*tools, str(pid), "--", "bash", "-c", script))
        assert dev_mounts(pid) == before
        # Left attached with --mount-only, used, then detached with --unmount.
        assert testing.crashcart(*tools, "--mount-only", str(pid)).returncode == 0
        assert " overlay crashcart-dev " in mountinfo(pid)
        check(testing.crashcart(*tools, str(pid), "--", "bash", "-c", script))
        assert " overlay crashcart-dev " in mountinfo(pid)
        assert testing.crashcart(*tools, "--unmount", str(pid)).returncode == 0
        assert dev_mounts(pid) == before
    finally:
        proc.kill()
        proc.wait()


def test_container_dies_during_the_session(tmp_path, toolbox):
    """The container's init is killed under the command: crashcart reports how the command
    ended and does not trip over the vanished mount namespace."""
    c = start(tmp_path, "runc", "dies", args=("sleep", "1000"))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "smith.crashcart", "--toolbox", toolbox, c.root_flag,
             c.root, c.cid, "--", "bash", "-c", "echo ready; sleep 30; exit 4"],
            env=tool_env(PYTHONPATH=testing.SMITH_PARENT), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, universal_newlines=True)
        assert proc.stdout.readline() == "ready\n"
        os.kill(c.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=20)
        # When a pid namespace's init dies, the kernel kills everything else in it.
        assert (proc.returncode, err) == (128 + signal.SIGKILL, "")
    finally:
        stop(c)


@pytest.mark.parametrize("runtime", ["runc", "smith"])
def test_dev_a_read_only_bind_of_the_host_devtmpfs(runtime, tmp_path, toolbox):
    """/dev is a read-only bind of the host's /dev (devtmpfs, one file system for the whole
    machine): a writable copy of that mount would create /dev/crashcart on the host. crashcart
    never writes to a file system shared with the host: /dev is covered by an overlay whose upper
    layer is a private tmpfs, for the session only."""
    def host_dev(config):
        config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/dev")]
        config["mounts"].append({"destination": "/dev", "type": "bind", "source": "/dev",
                                 "options": ["bind", "ro", "nosuid"]})
    assert not os.path.lexists("/dev/crashcart")
    c = start(tmp_path, runtime, "hostdev-" + runtime, args=("sleep", "1000"), edit=host_dev)
    try:
        pid = c.pid
        before = mountinfo(pid)
        assert [line.split() for line in before.splitlines() if line.split()[4] == "/dev"][-1][-3] \
            in ("devtmpfs", "tmpfs")
        res = c.crashcart(toolbox, c.cid, "--", "bash", "-c", "ls -d /dev/crashcart/bin; ls /dev/null")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["/dev/crashcart/bin", "/dev/null"]
        assert not os.path.lexists("/dev/crashcart")  # nothing made on the host's /dev
        assert mountinfo(pid) == before
        assert c.crashcart(toolbox, "--mount-only", c.cid).returncode == 0
        assert not os.path.lexists("/dev/crashcart")
        assert " overlay crashcart-dev " in mountinfo(pid)
        assert c.crashcart(toolbox, "--unmount", c.cid).returncode == 0
        assert mountinfo(pid) == before and not os.path.lexists("/dev/crashcart")
    finally:
        stop(c)
        if os.path.isdir("/dev/crashcart") and not os.path.ismount("/dev/crashcart"):
            os.rmdir("/dev/crashcart")  # what the old code left on the host


@pytest.mark.parametrize("planted", ["dev", "mount_point"])
def test_mount_point_reached_through_a_symlink(tmp_path, toolbox, planted):
    """A target whose /dev (a chroot's) or /dev/crashcart is a symlink: crashcart refuses it (the
    toolbox is mounted only on a real directory, opened without following links), and a toolbox
    already mounted through such a link (as an older crashcart did, at the link's target) is
    found and detached by --unmount."""
    from smith import linux
    from smith.crashcart import attach, syscalls

    root = tmp_path / "root"
    shutil.copytree(tb.busybox_rootfs(), str(root), symlinks=True)
    (root / "realdev").mkdir()
    if planted == "dev":
        subprocess.run(["rm", "-rf", str(root / "dev")], check=True)
        os.symlink("realdev", str(root / "dev"))
    else:
        (root / "dev").mkdir(exist_ok=True)
        os.symlink("../realdev", str(root / "dev" / "crashcart"))
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "chroot", str(root),
                             "/bin/sh", "-c", "echo ready; exec sleep 60"], env=tool_env(),
                            stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        pid = proc.pid
        before = mountinfo(pid)
        res = testing.crashcart("--toolbox", toolbox, str(pid), "--", "true")
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert res.stderr.startswith("crashcart: error: %s in " % ("/dev" if planted == "dev" else "/dev/crashcart")) \
            and "a symlink" in res.stderr, res.stderr
        assert mountinfo(pid) == before and os.listdir(str(root / "realdev")) == []

        # What an older crashcart did: mkdir and move_mount through the link.
        tree = linux.open_tree_clone(toolbox)
        syscalls.make_read_only(tree)
        ns = attach.MountNs(pid, "test")
        try:
            def old_attach():
                syscalls.make_private_mount_ns()
                ns.enter()
                if planted == "dev":
                    os.mkdir("/dev/crashcart")
                    linux.move_mount(tree, "/dev/crashcart")
                else:
                    linux.move_mount(tree, "/realdev")
                return ""
            attach.in_child(old_attach)
        finally:
            ns.close()
            os.close(tree)
        where = "/realdev/crashcart" if planted == "dev" else "/realdev"
        assert " %s ro," % where in mountinfo(pid)
        res = testing.crashcart("--toolbox", toolbox, "--unmount", str(pid))
        assert res.returncode == 0, res.stderr
        assert " %s ro," % where not in mountinfo(pid)
    finally:
        proc.kill()
        proc.wait()


def test_a_cgroup_it_cannot_join_is_named_escaped(tmp_path, capsys):
    """The target's processes may create and name cgroups (a delegated cgroupfs): the warning
    about one crashcart cannot join quoted its name as is, an OSC reached the terminal."""
    from smith.crashcart import enter
    enter._join_cgroups([str(tmp_path / "a\x1b]2;owned\x07" / "cgroup.procs")])
    err = capsys.readouterr().err
    assert err == "crashcart: warning: cannot join cgroup %s/a\\x1b]2;owned\\x07: No such file or directory\n" \
        % tmp_path, err
