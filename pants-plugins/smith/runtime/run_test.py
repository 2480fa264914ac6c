"""`run` of real busybox bundles: each feature is checked from inside the container, and
where runc defines the behaviour the same bundle is run by runc and the outputs compared."""
import json
import os
import re
import signal

import pytest

from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools


@pytest.fixture(scope="module")
def app():
    require_tools("runc", "busybox")
    return tb.cached_zipapp()


def run_both(app, tmp_path, script, edit=None, runtimes=("smith", "runc")):
    """Run `sh -c script` in the same bundle under each runtime; returns {name: CompletedProcess}."""
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", script], edit=edit)
    out = {}
    for name in runtimes:
        binary = app if name == "smith" else "runc"
        root = str(tmp_path / ("root-" + name))
        cid = "t-%s-%d" % (name, os.getpid())
        out[name] = tb.runtime(binary, root, "run", cid, cwd=bundle)
        assert not tb.leftovers(cid), "%s left things behind: %s" % (cid, out[name].stderr)
        assert not os.listdir(root) if os.path.isdir(root) else True
    return out


def same(app, tmp_path, script, edit=None):
    res = run_both(app, tmp_path, script, edit)
    assert res["runc"].returncode == 0, res["runc"].stderr
    assert res["smith"].returncode == 0, res["smith"].stderr
    assert res["smith"].stdout == res["runc"].stdout
    return res["smith"].stdout


def test_exit_status_like_runc(app, tmp_path):
    res = run_both(app, tmp_path, "exit 3")
    assert res["smith"].returncode == res["runc"].returncode == 3
    # killed by a signal: 128 + N (sh as pid 1 cannot kill itself, so use a child that execs)
    res = run_both(app, tmp_path, "sh -c 'kill -TERM $$'; exit $?")
    assert res["smith"].returncode == res["runc"].returncode == 128 + signal.SIGTERM


def test_process_identity_and_caps(app, tmp_path):
    script = ("grep -E '^(Cap|NoNewPrivs|Uid|Gid|Groups|SigIgn|SigBlk)' /proc/self/status; id; umask; pwd; env | sort; "
              "hostname; cat /proc/self/oom_score_adj")

    def edit(c):
        c["process"]["user"] = {"uid": 10, "gid": 10, "additionalGids": [5, 7], "umask": 0o027}
        c["process"]["cwd"] = "/tmp"
        c["process"]["env"] = ["PATH=/bin", "HELLO=smith world"]
        c["process"]["oomScoreAdj"] = 500
        c["hostname"] = "box"
        capset = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        c["process"]["capabilities"] = {"bounding": capset + ["CAP_SYS_ADMIN"], "effective": capset,
                                        "permitted": capset, "inheritable": capset[:1],
                                        "ambient": capset[:1]}
    out = same(app, tmp_path, script, edit)
    # after exec as uid 10 only the ambient cap (CHOWN) is left; the bounding set is as given
    for line in ("CapInh:\t0000000000000001", "CapPrm:\t0000000000000001", "CapEff:\t0000000000000001",
                 "CapBnd:\t0000000000200421", "CapAmb:\t0000000000000001", "NoNewPrivs:\t1"):
        assert line in out
    assert "uid=10(smith) gid=10(smith) groups=5,7" in out and "\n0027\n/tmp\n" in out
    assert "HELLO=smith world\nHOME=/\n" in out and "\nbox\n500\n" in out


def _mounts(text):
    """(mount point, per-mount options, fs type, super options) of mountinfo, sorted."""
    rows = []
    for line in text.splitlines():
        f = line.split()
        if len(f) > 6 and "-" in f:
            sep = f.index("-")
            rows.append((f[4], f[5], f[sep + 1], re.sub(r"size=\d+k,|nr_inodes=\d+,", "", f[sep + 3])))
    return sorted(rows)


def test_mounts_readonly_masked_like_runc(app, tmp_path):
    res = run_both(app, tmp_path, "cat /proc/self/mountinfo; touch /x 2>&1; cat /proc/kcore 2>&1 | head -c 20; "
                                  "ls -l /dev/ptmx /dev/fd /dev/stdin; ls /dev")
    for r in res.values():
        assert r.returncode == 0, r.stderr
    ours, theirs = (res[n].stdout.split("\n", 1) for n in ("smith", "runc"))
    assert _mounts(res["smith"].stdout) == _mounts(res["runc"].stdout)
    tail = lambda s: s[s.index("touch"):]  # noqa: E731
    assert tail(res["smith"].stdout).replace("\n", " ") == tail(res["runc"].stdout).replace("\n", " ")
    assert "touch: /x: Read-only file system" in res["smith"].stdout
    root = [m for m in _mounts(res["smith"].stdout) if m[0] == "/"][0]
    assert root[1].startswith("ro,")


def test_bind_mounts_tmpfs_and_propagation(app, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from host\n")

    def edit(c):
        c["mounts"] += [
            {"destination": "/read", "type": "bind", "source": str(data), "options": ["rbind", "ro", "nosuid", "nodev"]},
            {"destination": "/write", "type": "bind", "source": str(data), "options": ["bind", "rw", "rprivate"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=1m"]},
        ]
    script = ("cat /read/in.txt; (echo x > /read/f) 2>&1 | sed 's/.*: //'; echo written > /write/out.txt; "
              "touch /run/ok && echo run-writable; grep -E ' /(read|write|run) ' /proc/self/mountinfo | "
              "awk '{print $5, $6, $7}'")
    out = same(app, tmp_path, script, edit)
    assert out.startswith("from host\nRead-only file system\nrun-writable\n")
    assert "/read ro,nosuid,nodev,relatime -\n" in out and "/write rw,relatime -\n" in out
    assert (data / "out.txt").read_text() == "written\n"


def test_rlimits_and_clear_error(app, tmp_path):
    def edit(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
                                   {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    out = same(app, tmp_path, "ulimit -n; ulimit -Hn; ulimit -c", edit)
    assert out == "256\n512\n0\n"

    hard = int(open("/proc/self/limits").read().split("Max open files")[1].split()[1])

    def too_high(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    res = run_both(app, tmp_path, "true", too_high, runtimes=("smith",))["smith"]
    assert res.returncode == 1
    assert "process.rlimits RLIMIT_NOFILE" in res.stderr and "CAP_SYS_RESOURCE" in res.stderr


def test_user_namespace_mappings(app, tmp_path):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["root"]["readonly"] = True
        # like `runc spec --rootless`: no mounts that need the host's privileges
        c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/sys/fs/cgroup",)]
    out = same(app, tmp_path, "cat /proc/self/uid_map /proc/self/gid_map; id; stat -c '%u' /bin/busybox", edit)
    assert re.match(r"\s*0\s+100000\s+65536\n\s*0\s+100000\s+65536\nuid=0\(root\) gid=0\(root\)\n", out)
    assert out.endswith("65534\n")  # the rootfs owner (host root) is unmapped inside


def test_seccomp_denied_syscall_gets_eperm(app, tmp_path):
    def edit(c):
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                         {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]}
    script = "mkdir /tmp/x 2>&1; hostname other 2>&1; grep Seccomp: /proc/self/status; echo done"
    out = same(app, tmp_path, script, lambda c: (edit(c), c["mounts"].append(
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})))
    assert "mkdir: can't create directory '/tmp/x': Operation not permitted" in out
    assert "Seccomp:\t2" in out and out.endswith("done\n")


def test_sysctl_and_namespaces(app, tmp_path):
    def edit(c):
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}
        c["linux"]["namespaces"].append({"type": "cgroup"})
    out = same(app, tmp_path, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax; "
                              "cat /proc/self/cgroup | grep -c ':/$'; echo $$", edit)
    lines = out.split()
    assert lines[:2] == ["1", "123456789"] and lines[-1] == "1"
    assert int(lines[2]) >= 5  # in its cgroup namespace every hierarchy looks like "/"


def test_joined_namespace_by_path(app, tmp_path):
    """A container joins the uts namespace of a running one (by /proc/PID/ns/uts)."""
    bundle = tb.bundle(str(tmp_path / "a"), args=["sleep", "30"],
                       edit=lambda c: c.update(hostname="shared-uts"))
    root = str(tmp_path / "root")
    assert tb.runtime(app, root, "run", "--detach", "ns-a", cwd=bundle, detached=True).returncode == 0
    try:
        pid = json.loads(tb.runtime(app, root, "state", "ns-a").stdout)["pid"]

        def join(c):
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]
            c["linux"]["namespaces"].append({"type": "uts", "path": "/proc/%d/ns/uts" % pid})
            c.pop("hostname")
        b2 = tb.bundle(str(tmp_path / "b"), args=["hostname"], edit=join)
        res = tb.runtime(app, root, "run", "ns-b", cwd=b2)
        assert (res.returncode, res.stdout) == (0, "shared-uts\n"), res.stderr
    finally:
        tb.runtime(app, root, "delete", "--force", "ns-a")
    assert not tb.leftovers("ns-a") and not os.listdir(root)


def test_cgroup_limits_created_and_removed(app, tmp_path):
    def edit(c):
        c["linux"]["cgroupsPath"] = "/smith-test/limits-%d" % os.getpid()
        c["linux"]["resources"] = {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 42},
                                   "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
                                   "devices": [{"allow": False, "access": "rwm"}]}
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
              "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
              "/sys/fs/cgroup/cpuset/cpuset.cpus; head -c1 /dev/zero | wc -c; grep -E '^(0|8):' /proc/self/cgroup")
    out = same(app, tmp_path, script, edit)
    path = "/smith-test/limits-%d" % os.getpid()
    assert out.split() == ["67108864", "42", "512", "50000", "0", "1", "8:pids:" + path, "0::" + path]
    assert not os.path.exists("/sys/fs/cgroup/pids/smith-test/limits-%d" % os.getpid())


def test_hooks_get_state_and_time_out(app, tmp_path):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\necho \"$1 $(cat)\" >> %s\n" % log)
    hook.chmod(0o755)
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]

    def edit(c):
        c["hooks"] = {k: [{"path": str(hook), "args": ["hook.sh", k]}] for k in kinds}
        c["hooks"]["startContainer"] = []  # runs inside the container: busybox has no hook.sh
    res = run_both(app, tmp_path, "true", edit, runtimes=("smith",))["smith"]
    assert res.returncode == 0, res.stderr
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [k for k in kinds if k != "startContainer"]
    for line in lines:
        st = json.loads(line.split(" ", 1)[1])
        assert st["id"].startswith("t-smith-") and st["bundle"] == str(tmp_path / "bundle")
        assert st["pid"] > 0 or line.startswith("poststop")
    slow = tmp_path / "slow.sh"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    res = run_both(app, tmp_path, "true", lambda c: c.update(
        hooks={"createRuntime": [{"path": str(slow), "timeout": 1}]}), runtimes=("smith",))["smith"]
    assert res.returncode == 1 and "hooks.createRuntime[0]" in res.stderr and "timed out" in res.stderr


def test_no_pivot(app, tmp_path):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"])
    ours = tb.runtime(app, str(tmp_path / "r1"), "run", "--no-pivot", "np", cwd=bundle)
    theirs = tb.runtime("runc", str(tmp_path / "r2"), "run", "--no-pivot", "np", cwd=bundle)
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
    assert ours.stdout.split()[:-1] == theirs.stdout.split()[:-1]


def test_linux_devices_like_runc(app, tmp_path):
    def edit(c):
        c["linux"]["devices"] = [
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 10, "gid": 10},
            {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600},
        ]
        c["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3,
                                                   "access": "rw"})
    script = ("ls -ln /dev/mynull /dev/sub/myzero /dev/null /dev/tty | awk '{print $1, $3, $4, $5, $6, $NF}'; "
              "(echo hi > /dev/mynull) 2>&1 | sed 's/.*: //'; head -c 1 /dev/sub/myzero | wc -c")
    out = same(app, tmp_path, script, edit)
    assert "crw-r----- 10 10 1, 3 /dev/mynull" in out and "crw------- 0 0 1, 5 /dev/sub/myzero" in out
    # root without CAP_DAC_OVERRIDE may not write a 0640 node owned by uid 10
    assert out.endswith("Permission denied\n1\n")


def test_new_network_namespace_has_loopback_up_like_runc(app, tmp_path):
    # runc's default bundle has a network namespace; /sys/class/net/lo/flags has IFF_UP (0x1).
    out = same(app, tmp_path, "cat /sys/class/net/lo/flags; ls /sys/class/net")
    flags, interfaces = out.split()[0], out.split()[1:]
    assert int(flags, 16) & 0x1 and interfaces == ["lo"]


def test_a_failed_hooks_output_is_printed_escaped(capfd):
    """A poststart/poststop hook that fails is a warning quoting what it printed: an OSC in that
    reached the terminal as is before (no container needed)."""
    from smith.runtime import hooks
    hooks.run("poststop", [{"path": "/bin/sh", "args": ["sh", "-c", "printf 'no\\033]2;owned\\007'; exit 3"]}],
              {}, fatal=False)
    err = capfd.readouterr().err
    assert err == "smith-runtime: warning: hooks.poststop[0] (/bin/sh) exited with status 3: no\\x1b]2;owned\\x07\n", err
