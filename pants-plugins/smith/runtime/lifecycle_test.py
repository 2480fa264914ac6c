"""create / start / state / kill / delete / list / ps / exec / features through the real CLI
(the zipapp run by /usr/bin/python3 -I -S), compared with runc where runc defines it."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools


@pytest.fixture(scope="module")
def app():
    require_tools("runc", "busybox")
    return tb.cached_zipapp()


def wait_status(app, root, cid, status, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = json.loads(tb.runtime(app, root, "state", cid).stdout)
        if st["status"] == status:
            return st
        time.sleep(0.02)
    raise AssertionError("%s never became %s (is %s)" % (cid, status, st["status"]))


def test_create_start_kill_delete_like_runc(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sleep", "60"])
    seen = {}
    for name, binary in (("smith", app), ("runc", "runc")):
        root = str(tmp_path / ("root-" + name))
        cid = "life-%s-%d" % (name, os.getpid())
        pid_file = str(tmp_path / (name + ".pid"))
        res = tb.runtime(binary, root, "create", "--bundle", bundle, "--pid-file", pid_file, cid, detached=True)
        assert res.returncode == 0
        st = json.loads(tb.runtime(binary, root, "state", cid).stdout)
        assert st["status"] == "created" and st["pid"] == int(open(pid_file).read())
        assert open("/proc/%d/cmdline" % st["pid"], "rb").read() != b"sleep\x0060\x00"  # not exec'd yet
        listed = tb.runtime(binary, root, "list", "--format", "json").stdout
        assert [c["id"] for c in json.loads(listed)] == [cid]
        assert tb.runtime(binary, root, "start", cid).returncode == 0
        st = json.loads(tb.runtime(binary, root, "state", cid).stdout)
        assert st["status"] == "running"
        deadline = time.monotonic() + 3  # runc's start may return just before the exec
        while open("/proc/%d/cmdline" % st["pid"], "rb").read() != b"sleep\x0060\x00":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        ps = json.loads(tb.runtime(binary, root, "ps", "--format", "json", cid).stdout)
        assert ps == [st["pid"]]
        busy = tb.runtime(binary, root, "delete", cid)
        assert busy.returncode != 0
        again = tb.runtime(binary, root, "start", cid)
        assert again.returncode != 0
        assert tb.runtime(binary, root, "kill", cid, "KILL").returncode == 0
        st = wait_status(binary, root, cid, "stopped")
        killed_again = tb.runtime(binary, root, "kill", cid, "TERM")
        assert tb.runtime(binary, root, "delete", cid).returncode == 0
        gone = tb.runtime(binary, root, "state", cid)
        assert gone.returncode != 0 and "does not exist" in gone.stderr
        assert tb.leftovers(cid) == [] and os.listdir(root) == []
        seen[name] = (sorted(st), busy.returncode != 0, again.returncode != 0, killed_again.returncode != 0)
    assert seen["smith"] == seen["runc"]


def test_delete_of_created_and_force(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sleep", "60"])
    root = str(tmp_path / "root")
    assert tb.runtime(app, root, "create", "c1", cwd=bundle, detached=True).returncode == 0
    pid = json.loads(tb.runtime(app, root, "state", "c1").stdout)["pid"]
    assert tb.runtime(app, root, "delete", "c1").returncode == 0  # a created container can go
    assert not os.path.exists("/proc/%d/cmdline" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    assert tb.runtime(app, root, "run", "-d", "c2", cwd=bundle, detached=True).returncode == 0
    assert tb.runtime(app, root, "delete", "--force", "c2").returncode == 0
    assert os.listdir(root) == [] and tb.leftovers("c1") == tb.leftovers("c2") == []
    assert tb.runtime(app, root, "delete", "--force", "never-was").returncode == 0
    assert tb.runtime(app, root, "delete", "never-was").returncode == 1


def test_duplicate_id_and_bad_id(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sleep", "60"])
    root = str(tmp_path / "root")
    assert tb.runtime(app, root, "create", "dup", cwd=bundle, detached=True).returncode == 0
    try:
        res = tb.runtime(app, root, "create", "dup", cwd=bundle)
        assert res.returncode == 1 and "already exists" in res.stderr
        assert json.loads(tb.runtime(app, root, "state", "dup").stdout)["status"] == "created"
    finally:
        tb.runtime(app, root, "delete", "--force", "dup")
    res = tb.runtime(app, root, "create", "../evil", cwd=bundle)
    assert res.returncode == 1 and "invalid container id" in res.stderr


def test_exec_joins_the_container(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sleep", "60"],
                       edit=lambda c: c.update(hostname="exec-box"))
    root = str(tmp_path / "root")
    assert tb.runtime(app, root, "run", "-d", "ex", cwd=bundle, detached=True).returncode == 0
    try:
        res = tb.runtime(app, root, "exec", "ex", "sh", "-c", "hostname; echo $$; ps -o pid,comm | grep -c sleep; "
                         "grep CapEff /proc/self/status; exit 4")
        assert res.returncode == 4, res.stderr
        host, pid, sleeps, caps = res.stdout.split("\n")[:4]
        assert host == "exec-box" and int(pid) > 1 and sleeps == "1"
        assert caps.split()[1] == "00000000a80425fb" or caps.split()[1] == "0000000020000420"
        # a process file, detached, with a pid file, as user 10 with an extra env var
        proc = json.loads(open(os.path.join(bundle, "config.json")).read())["process"]
        proc.update(args=["sh", "-c", "id > /dev/shm/who; echo $EXTRA >> /dev/shm/who"], env=["EXTRA=yes"],
                    user={"uid": 10, "gid": 10})
        pf = tmp_path / "process.json"
        pf.write_text(json.dumps(proc))
        res = tb.runtime(app, root, "exec", "--process", str(pf), "--detach", "--pid-file",
                         str(tmp_path / "exec.pid"), "ex")
        assert res.returncode == 0, res.stderr
        assert int((tmp_path / "exec.pid").read_text()) > 0
        time.sleep(0.3)
        res = tb.runtime(app, root, "exec", "ex", "cat", "/dev/shm/who")
        assert res.stdout == "uid=10(smith) gid=10(smith)\nyes\n"  # as runc: no extra groups
        res = tb.runtime(app, root, "exec", "--bogus", "ex", "true")
        assert res.returncode == 1 and "unknown option '--bogus'" in res.stderr
        res = tb.runtime(app, root, "exec", "ex", "no-such-program")
        assert res.returncode == 1 and "not found" in res.stderr
    finally:
        assert tb.runtime(app, root, "delete", "--force", "ex").returncode == 0
    assert tb.leftovers("ex") == []


def test_terminal_over_console_socket(app, tmp_path):
    """process.terminal: the pty master arrives over --console-socket (SCM_RIGHTS)."""
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", "tty; stty size; echo hello-tty"],
                       edit=lambda c: c["process"].update(terminal=True, consoleSize={"height": 33, "width": 99}))
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got = {}

    def receive():
        conn, _ = server.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        got["name"] = msg
        data = b""
        while True:
            try:
                chunk = os.read(fds[0], 4096)
            except OSError:  # EIO once the last slave fd closes
                break
            if not chunk:
                break
            data += chunk
        got["data"] = data
    t = threading.Thread(target=receive)
    t.start()
    res = tb.runtime(app, str(tmp_path / "root"), "run", "--console-socket", path, "tty", cwd=bundle)
    t.join(10)
    assert res.returncode == 0, res.stderr
    assert got["name"] == b"/dev/pts/0"
    assert got["data"].replace(b"\r", b"") == b"/dev/pts/0\n33 99\nhello-tty\n"
    res = tb.runtime(app, str(tmp_path / "root"), "run", "tty2", cwd=bundle)
    assert res.returncode == 1 and "--console-socket" in res.stderr


def test_signals_are_forwarded(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", "trap 'echo got-usr1; exit 9' USR1; "
                                                       "echo ready; while true; do sleep 0.05; done"])
    proc = subprocess.Popen([app, "--root", str(tmp_path / "root"), "run", "sig"], cwd=bundle,
                            stdout=subprocess.PIPE, universal_newlines=True, env={"PATH": tb.PATH})
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(10)
    out, _ = proc.communicate(timeout=10)
    assert (proc.returncode, out) == (9, "got-usr1\n")


def test_fifty_containers_at_once(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", "test $$ = 1 && hostname"])
    root = str(tmp_path / "root")
    ids = ["many-%d-%02d" % (os.getpid(), i) for i in range(50)]
    procs = [subprocess.Popen([app, "--root", root, "run", cid], cwd=bundle, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, env={"PATH": tb.PATH})
             for cid in ids]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0] * 50, [r[1] for r in results if r[2]]
    assert all(r[0] == "runc\n" for r in results)
    assert os.listdir(root) == []
    for cid in ids:
        assert tb.leftovers(cid) == []


def test_cli_contract(app, tmp_path):
    root = str(tmp_path / "root")
    v = tb.runtime(app, root, "--version")
    assert v.returncode == 0 and v.stdout.startswith("smith-runtime version ") and "spec: 1.0" in v.stdout
    for args, text in ((["--bogus", "list"], "unknown option '--bogus'"),
                       (["list", "--bogus"], "unknown option '--bogus'"),
                       (["create", "--bundle"], "needs a value"),
                       (["frobnicate"], "unknown command 'frobnicate'"),
                       (["--systemd-cgroup", "list"], "--systemd-cgroup is not supported"),
                       (["--log-format", "xml", "list"], "--log-format must be text or json"),
                       (["kill", "x", "SIGNOPE"], "unknown signal"),
                       (["start"], "missing argument ID")):
        res = tb.runtime(app, root, *args)
        assert res.returncode != 0 and text in res.stderr, (args, res.stderr)
    log = tmp_path / "log.json"
    res = tb.runtime(app, root, "--log", str(log), "--log-format", "json", "state", "nope")
    assert res.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"]
    features = json.loads(tb.runtime(app, root, "features").stdout)
    assert "user" in features["linux"]["namespaces"] and "CAP_SYS_ADMIN" in features["linux"]["capabilities"]
    assert features["linux"]["seccomp"]["enabled"] is True
    assert tb.runtime(app, root, "list").stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_kill_all_without_pid_namespace(app, tmp_path):
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/proc"] + [
            {"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind", "ro"]}]
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", "sleep 61 & sleep 62 & wait"], edit=edit)
    root = str(tmp_path / "root")
    assert tb.runtime(app, root, "run", "-d", "ka", cwd=bundle, detached=True).returncode == 0
    deadline = time.monotonic() + 5
    while len(json.loads(tb.runtime(app, root, "ps", "--format", "json", "ka").stdout)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pids = json.loads(tb.runtime(app, root, "ps", "--format", "json", "ka").stdout)
    assert tb.runtime(app, root, "kill", "--all", "ka", "KILL").returncode == 0
    wait_status(app, root, "ka", "stopped")
    time.sleep(0.1)
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    assert tb.runtime(app, root, "delete", "ka").returncode == 0
    assert tb.leftovers("ka") == [] and os.listdir(root) == []


def test_concurrent_creates_of_one_id(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sleep", "60"])
    root = str(tmp_path / "root")
    # stderr to files: the winner's container keeps its stdio open while it waits for start
    errs = [open(str(tmp_path / ("err%d" % i)), "w+") for i in range(8)]
    procs = [subprocess.Popen([app, "--root", root, "create", "same-id"], cwd=bundle, stdout=subprocess.DEVNULL,
                              stderr=err, env={"PATH": tb.PATH}) for err in errs]
    results = [(p.wait(60), open(err.name).read()) for p, err in zip(procs, errs)]
    assert sorted(r[0] for r in results) == [0] + [1] * 7
    assert all("already exists" in r[1] for r in results if r[0])
    assert json.loads(tb.runtime(app, root, "state", "same-id").stdout)["status"] == "created"
    deleters = [subprocess.Popen([app, "--root", root, "delete", "--force", "same-id"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env={"PATH": tb.PATH}) for _ in range(4)]
    codes = sorted(p.wait(60) for p in deleters)
    assert codes == [0, 0, 0, 0]  # --force: the losers find nothing to delete, which is fine
    assert os.listdir(root) == [] and tb.leftovers("same-id") == []


def test_log_lines_are_one_line_each_and_escaped(tmp_path):
    """--log-format text writes one record a line, as runc's logrus: a message (which quotes
    strangers' text: a bundle's paths, a hook's output) with a newline or an ESC wrote a second,
    forged line or a terminal escape into the log before. (json escaped them already.)"""
    from smith.runtime import main
    g = main.Globals()
    g.log = str(tmp_path / "log.txt")
    main._log(g, "error", 'bundle /b\x1b]2;owned\x07: "x"\nlevel=info msg="forged"')
    [line] = (tmp_path / "log.txt").read_text().splitlines()
    assert line.endswith(' level=error msg="bundle /b\\x1b]2;owned\\x07: \\"x\\"\\nlevel=info msg=\\"forged\\""'), line
