"""A bad config.json is refused before anything exists: the message names the field, and no
state directory, cgroup or process is left behind."""
import os

import pytest

from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools


@pytest.fixture(scope="module")
def app():
    require_tools("runc", "busybox")
    return tb.cached_zipapp()


def _ns(c, t):
    c["linux"]["namespaces"].append({"type": t})


CASES = [
    ("missing args", lambda c: c["process"].pop("args"), "process.args"),
    ("args not strings", lambda c: c["process"].update(args=["sh", 3]), "process.args[1]"),
    ("relative cwd", lambda c: c["process"].update(cwd="tmp"), "process.cwd"),
    ("bad env", lambda c: c["process"].update(env=["NOEQUALS"]), "process.env[0]"),
    ("negative uid", lambda c: c["process"]["user"].update(uid=-1), "process.user.uid"),
    ("unknown cap", lambda c: c["process"]["capabilities"]["bounding"].append("CAP_FLY"),
     "process.capabilities.bounding[3]"),
    ("unknown rlimit", lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_X", "soft": 1, "hard": 1}),
     "process.rlimits[1].type"),
    ("soft above hard", lambda c: c["process"]["rlimits"][0].update(soft=2048), "process.rlimits[0]"),
    ("missing rootfs", lambda c: c["root"].update(path="no-such-rootfs"), "root.path"),
    ("unknown namespace", lambda c: _ns(c, "time-travel"), "linux.namespaces[5].type"),
    ("duplicate namespace", lambda c: _ns(c, "pid"), "linux.namespaces[5].type"),
    ("missing ns path", lambda c: c["linux"]["namespaces"].append({"type": "user", "path": "/proc/0/ns/user"}),
     "linux.namespaces[5].path"),
    ("mapping without userns", lambda c: c["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]), "linux.uidMappings"),
    ("bad mapping size", lambda c: (_ns(c, "user"), c["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 0}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])), "linux.uidMappings[0].size"),
    ("overlapping mapping", lambda c: (_ns(c, "user"), c["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 5, "hostID": 2000, "size": 10}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])), "linux.uidMappings"),
    ("relative mount", lambda c: c["mounts"].append({"destination": "mnt", "type": "tmpfs"}), "mounts[7].destination"),
    ("unknown hook", lambda c: c.update(hooks={"preboot": []}), "hooks.preboot"),
    ("bad seccomp action", lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_EXPLODE"}),
     "linux.seccomp.defaultAction"),
    ("missing executable", lambda c: c["process"].update(args=["no-such-program"]), "process.args[0]"),
    ("cwd not a directory", lambda c: c["process"].update(cwd="/bin/busybox"), "process.cwd"),
    ("bad cgroup value", lambda c: c["linux"].update(resources={"cpu": {"cpus": "9999"}}), "linux.resources"),
    ("args not an array", lambda c: c["process"].update(args="sh -c true"), "process.args: must be an array of strings"),
    ("huge uid", lambda c: c["process"]["user"].update(uid=2 ** 70), "process.user.uid"),
    ("huge rlimit", lambda c: c["process"]["rlimits"][0].update(hard=2 ** 70), "process.rlimits[0].hard"),
    ("hook env without =", lambda c: c.update(hooks={"poststop": [{"path": "/bin/true", "env": ["X"]}]}),
     "hooks.poststop[0].env[0]"),
    ("huge hook timeout", lambda c: c.update(hooks={"poststop": [{"path": "/bin/true", "timeout": 2 ** 70}]}),
     "hooks.poststop[0].timeout"),
    ("device mode not a number", lambda c: c["linux"].update(devices=[
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": "0666"}]), "linux.devices[0].fileMode"),
    ("device uid not a number", lambda c: c["linux"].update(devices=[
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "uid": "root"}]), "linux.devices[0].uid"),
    ("device major too big", lambda c: c["linux"].update(devices=[
        {"path": "/dev/fuse", "type": "c", "major": 2 ** 40, "minor": 229}]), "linux.devices[0].major"),
    ("seccomp args not objects", lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": ["index 0"]}]}), "linux.seccomp.syscalls[0].args[0]"),
    ("apparmor profile", lambda c: c["process"].update(apparmorProfile="docker-default"), "process.apparmorProfile"),
    ("selinux label", lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"),
     "process.selinuxLabel"),
    ("mount label", lambda c: c["linux"].update(mountLabel="system_u:object_r:container_file_t:s0"), "linux.mountLabel"),
    ("intel rdt", lambda c: c["linux"].update(intelRdt={"closID": "x", "l3CacheSchema": "L3:0=f"}), "linux.intelRdt"),
    ("swappiness not a number", lambda c: c["linux"].update(resources={"memory": {"swappiness": "60"}}),
     "linux.resources.memory.swappiness"),
]


@pytest.mark.parametrize("name,edit,field", CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_field_and_leaves_nothing(app, tmp_path, name, edit, field):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["true"], edit=edit)
    if name == "missing rootfs":  # bundle() points root.path at the cache; re-apply the edit
        import json
        path = os.path.join(bundle, "config.json")
        c = json.load(open(path))
        edit(c)
        json.dump(c, open(path, "w"))
    root = str(tmp_path / "root")
    cid = "bad-%d" % os.getpid()
    res = tb.runtime(app, root, "run", cid, cwd=bundle)
    assert res.returncode == 1, res.stdout + res.stderr
    assert field in res.stderr, res.stderr
    assert res.stderr.startswith("smith-runtime: error: ")
    assert not os.path.isdir(root) or os.listdir(root) == []
    assert tb.leftovers(cid) == []


def test_not_json(app, tmp_path):
    (tmp_path / "config.json").write_text("{\"ociVersion\": ")
    res = tb.runtime(app, str(tmp_path / "root"), "create", "x", cwd=str(tmp_path))
    assert res.returncode == 1 and "config.json: not valid JSON" in res.stderr


@pytest.mark.parametrize("text", [
    "[" * 100000 + "]" * 100000,
    '{"ociVersion": "1.0.2", "annotations": {"a": ' + '{"b": [' * 50000 + "1" + "]}" * 50000 + "}}",
], ids=["arrays", "objects"])
def test_deeply_nested_config(app, tmp_path, text):
    """The C JSON scanner recurses once per level: 100000 levels was a RecursionError traceback."""
    (tmp_path / "config.json").write_text(text)
    res = tb.runtime(app, str(tmp_path / "root"), "create", "deep", cwd=str(tmp_path))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith("smith-runtime: error: %s: " % (tmp_path / "config.json"))
    assert res.stderr.rstrip().endswith("nested too deeply (more than 200 levels of arrays and objects)")
    assert not (tmp_path / "root").exists() and tb.leftovers("deep") == []


def test_nesting_a_real_config_needs_is_accepted(app, tmp_path):
    """A level well below the cap (annotations hold a value 150 levels deep) still runs."""
    deep = "x"
    for _ in range(150):
        deep = [deep]
    bundle = tb.bundle(str(tmp_path / "b"), args=["true"], edit=lambda c: c.update(annotations={"deep": deep}))
    res = tb.runtime(app, str(tmp_path / "root"), "run", "deep-ok", cwd=bundle)
    assert res.returncode == 0, res.stderr


def test_huge_config(app, tmp_path):
    (tmp_path / "config.json").write_text(" " * (5 << 20) + "{}")
    res = tb.runtime(app, str(tmp_path / "root"), "create", "huge", cwd=str(tmp_path))
    assert res.returncode == 1 and "config.json: too large (more than 4 MiB)" in res.stderr, res.stderr
    assert not (tmp_path / "root").exists()


def test_no_bundle(app, tmp_path):
    res = tb.runtime(app, str(tmp_path / "root"), "create", "--bundle", str(tmp_path / "nope"), "x")
    assert res.returncode == 1 and "cannot read" in res.stderr and "--bundle" in res.stderr
