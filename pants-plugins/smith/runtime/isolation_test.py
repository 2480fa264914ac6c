"""Hostile bundles and the namespace cases of issue 14, with real busybox bundles, each compared
with runc 1.1.5 on the same bundle where runc defines the behaviour.

SMITH_TEST_RUNTIME=/path/to/smith-runtime runs them against another build (e.g. an older
commit's zipapp, to see which fail there); SMITH_RACE_RUNS sets the race's iterations.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools


@pytest.fixture(scope="module")
def app():
    require_tools("runc", "busybox")
    return os.environ.get("SMITH_TEST_RUNTIME") or tb.cached_zipapp()


def _rootfs(tmp_path, name="rootfs") -> str:
    """A private, writable copy of the busybox rootfs (the cached one is shared by all tests)."""
    path = str(tmp_path / name)
    cached = tb.busybox_rootfs()
    for d in ("dev", "proc", "sys"):  # a run that went wrong must not make this copy /dev/zero
        assert os.listdir(os.path.join(cached, d)) == [], "the shared rootfs %s has files in /%s" % (cached, d)
    shutil.copytree(cached, path, symlinks=True)
    return path


def _bundle(tmp_path, name, args, rootfs=None, edit=None) -> str:
    def full(c):
        if rootfs:
            c["root"] = {"path": rootfs, "readonly": True}
        if edit:
            edit(c)
    return tb.bundle(str(tmp_path / name), args=args, edit=full)


def _run(binary, tmp_path, bundle, cid="iso"):
    root = str(tmp_path / ("root-" + os.path.basename(binary)))
    res = tb.runtime(binary, root, "run", cid, cwd=bundle)
    assert not os.path.isdir(root) or not os.listdir(root), "%s left its state: %s" % (binary, res.stderr)
    return res


def _host_mounts() -> set:
    with open("/proc/self/mountinfo") as f:
        return {line.split(" - ")[0].split(None, 4)[4] for line in f}


def _mount_points(text: str) -> list:
    return sorted(line.split()[4] for line in text.splitlines() if " - " in line)


def _umount_all(path: str) -> None:
    """runc (and smith, as runc) mount in the host's namespace when the config has none."""
    subprocess.run(["umount", "-R", path], stderr=subprocess.DEVNULL)


# ---- mount destinations under a symlink-swap race (CVE-2021-30465 class) ----

RACER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
while True:  # atomically exchange the directory "race" and the symlink "race.link" -> outside
    libc.renameat2(d, b"race", d, b"race.link", 2)  # RENAME_EXCHANGE
"""


def test_symlink_swap_race_leaves_the_host_alone(app, tmp_path):
    """A second process swaps a directory on the way to every mount destination for a symlink
    to a host directory, as fast as it can, while the runtime creates the missing parts and
    mounts. Nothing may appear in the host directory, no mount may land there, no run may
    crash; the runs that see the symlink create its target inside the rootfs instead."""
    runs = int(os.environ.get("SMITH_RACE_RUNS", "200"))
    rootfs = _rootfs(tmp_path)
    outside = str(tmp_path / "outside")
    os.mkdir(outside)
    os.mkdir(os.path.join(rootfs, "race"))
    os.symlink(outside, os.path.join(rootfs, "race.link"))
    data = tmp_path / "data"
    data.mkdir()
    bundle = _bundle(tmp_path, "bundle", ["true"], rootfs)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    mounts_before = _host_mounts()
    racer = subprocess.Popen([sys.executable, "-c", RACER, rootfs])
    outcomes = {}
    try:
        for binary, n in ((app, runs), ("runc", max(1, runs // 8))):
            for i in range(n):
                c = json.loads(json.dumps(config))
                top = "/race/%s-%d" % ("smith" if binary == app else "runc", i)
                c["mounts"] += [{"destination": "%s/t%d/x" % (top, j), "type": "tmpfs", "source": "tmpfs",
                                 "options": ["size=64k"]} for j in range(3)]
                c["mounts"].append({"destination": top + "/b/y", "type": "bind", "source": str(data),
                                    "options": ["rbind", "ro"]})
                with open(os.path.join(bundle, "config.json"), "w") as f:
                    json.dump(c, f)
                res = _run(binary, tmp_path, bundle, "race%d" % i)
                outcomes.setdefault(binary, []).append(res.stderr.strip()[-200:] if res.returncode else 0)
                if binary == app:
                    assert res.returncode == 0 or (res.returncode == 1 and res.stderr.startswith(
                        "smith-runtime: error: ") and "Traceback" not in res.stderr), res.stderr
            assert racer.poll() is None
    finally:
        racer.kill()
        racer.wait()
    leaked = [os.path.join(d, n) for d, dirs, files in os.walk(outside) for n in dirs + files]
    # runc 1.1.5 leaks too, now and then (CVE-2024-45310, fixed in 1.1.14): only ours must not
    assert [p for p in leaked if "/smith-" in p] == [], "created on the host, outside the rootfs: %s" % leaked[:10]
    assert not [m for m in _host_mounts() - mounts_before if outside in m or "/race/" in m]
    # the race was real: some runs met the symlink, and resolved it inside the rootfs
    assert os.path.isdir(rootfs + outside)
    assert outcomes[app].count(0) >= runs * 0.9, [o for o in outcomes[app] if o]


# ---- proc and sysfs only on ordinary directories (CVE-2019-16884 / CVE-2019-19921 class) ----

@pytest.mark.parametrize("fs,directory", [("proc", "proc"), ("sysfs", "sys")])
def test_proc_or_sys_symlink_refused_like_runc(app, tmp_path, fs, directory):
    rootfs = _rootfs(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rmdir(os.path.join(rootfs, directory))
    os.symlink(str(elsewhere), os.path.join(rootfs, directory))
    bundle = _bundle(tmp_path, "bundle", ["true"], rootfs)
    before, tmp_before = _host_mounts(), os.listdir(os.path.join(rootfs, "tmp"))
    for binary in (app, "runc"):
        res = _run(binary, tmp_path, bundle)
        assert res.returncode == 1, res.stderr
        assert 'filesystem "%s" must be mounted on ordinary directory' % fs in res.stderr.replace('\\"', '"'), res.stderr
    assert list(elsewhere.iterdir()) == [] and os.listdir(os.path.join(rootfs, "tmp")) == tmp_before
    assert [m for m in _host_mounts() - before if str(tmp_path) in m] == []  # others' tests mount too
    ours = _run(app, tmp_path, bundle)
    assert ours.stderr.startswith("smith-runtime: error: mounts[") and "/%s" % directory in ours.stderr


# ---- masked paths bound from a /dev/null that is not the null device (CVE-2025-31133 class) ----

def test_masked_paths_never_bind_a_swapped_dev_null(app, tmp_path):
    """/dev is bound from the bundle and its `null` is a symlink to a host sysctl file: masking a
    file with it shows (or, in the CVE's variants, lets the container write) that file instead.
    runc 1.1.5 binds /proc/sys/kernel/core_pattern over the masked file here."""
    masked = [p for p in ("/proc/keys", "/proc/timer_list", "/proc/kcore") if os.path.exists(p)][0]
    dev = tmp_path / "dev"
    dev.mkdir()
    os.symlink("/proc/sys/kernel/core_pattern", str(dev / "null"))

    def edit(c):
        c["mounts"] = [{"destination": "/dev", "type": "bind", "source": str(dev), "options": ["rbind"]}
                       if m["destination"] == "/dev" else m for m in c["mounts"]]
        c["linux"]["maskedPaths"] = [masked]
    script = "stat -c '%%F %%t:%%T' %s; head -c 64 %s | wc -c" % (masked, masked)
    res = _run(app, tmp_path, _bundle(tmp_path, "bundle", ["sh", "-c", script], edit=edit))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["character special file 1:3", "0"], res.stdout


# ---- process.cwd never leaves the container through a magic link (CVE-2024-21626 class) ----

def test_cwd_through_a_magic_link_is_refused(app, tmp_path):
    """Without a pid namespace /proc/1/root is the host's root: a rootfs symlink /work ->
    /proc/1/root/tmp as process.cwd must not put the program in the host's /tmp."""
    rootfs = _rootfs(tmp_path)
    os.symlink("/proc/1/root/tmp", os.path.join(rootfs, "work"))

    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["process"]["cwd"] = "/work"
    marker = "/tmp/smith-isolation-marker-%d" % os.getpid()
    open(marker, "w").close()
    bundle = _bundle(tmp_path, "bundle", ["ls"], rootfs, edit)
    try:
        res, theirs = _run(app, tmp_path, bundle), _run("runc", tmp_path, bundle)
    finally:
        os.unlink(marker)
    assert os.path.basename(marker) not in res.stdout + theirs.stdout
    assert res.returncode == 1 and "process.cwd /work" in res.stderr, res.stdout + res.stderr
    assert theirs.returncode == 1  # runc 1.1.5: "mkdir /work: file exists"


def test_missing_cwd_is_created_like_runc(app, tmp_path):
    rootfs = _rootfs(tmp_path)
    bundle = _bundle(tmp_path, "bundle", ["pwd"], rootfs, lambda c: c["process"].update(cwd="/new/dir"))
    for binary in (app, "runc"):
        res = _run(binary, tmp_path, bundle)
        assert (res.returncode, res.stdout) == (0, "/new/dir\n"), res.stderr
        shutil.rmtree(os.path.join(rootfs, "new"))


# ---- state directories ----

def test_symlinked_state_dir_refused_like_runc(app, tmp_path):
    """With --root R and R/x -> /some/dir, delete x must not touch /some/dir (it emptied it)."""
    for binary in (app, "runc"):
        victim, root = tmp_path / "victim", tmp_path / ("root-" + os.path.basename(binary))
        victim.mkdir()
        root.mkdir()
        for name in ("a", "b", "state.json"):
            (victim / name).write_text("precious\n")
        os.symlink(str(victim), str(root / "x"))
        for args in (["delete", "x"], ["state", "x"], ["kill", "x", "KILL"], ["start", "x"]):
            res = tb.runtime(binary, str(root), *args)
            assert res.returncode == 1, (binary, args, res.stdout)
        if binary == app:
            assert "is not a state directory (a symlink or a file); refusing to use it" in res.stderr
        assert sorted(p.name for p in victim.iterdir()) == ["a", "b", "state.json"]
        res = tb.runtime(binary, str(root), "list", "-q")
        assert (res.returncode, res.stdout) == (0, "")
        res = tb.runtime(binary, str(root), "delete", "--force", "x")  # removes the link itself
        assert res.returncode == 0, res.stderr
        assert os.listdir(str(root)) == [] and len(list(victim.iterdir())) == 3
        shutil.rmtree(str(victim))


@pytest.mark.parametrize("cid", ["é", "a/b", "..", "x" * 256, "a b"])
def test_bad_container_ids_refused(app, tmp_path, cid):
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["true"])
    res = tb.runtime(app, str(tmp_path / "root"), "run", cid, cwd=bundle)
    assert res.returncode == 1 and "invalid container id" in res.stderr
    assert not os.path.exists(str(tmp_path / "root")) or os.listdir(str(tmp_path / "root")) == []


# ---- namespaces and the root switch, against runc ----

def _both(app, tmp_path, bundle):
    out = {}
    for binary in (app, "runc"):
        out[binary] = _run(binary, tmp_path, bundle)
        assert out[binary].returncode == 0, (binary, out[binary].stderr)
    return out[app], out["runc"]


@pytest.mark.parametrize("propagation", ["shared", "rshared", "slave", "private", "unbindable"])
def test_rootfs_propagation_like_runc(app, tmp_path, propagation):
    bundle = _bundle(tmp_path, "bundle", ["cat", "/proc/self/mountinfo"],
                     edit=lambda c: c["linux"].update(rootfsPropagation=propagation))
    if propagation == "unbindable":  # the rootfs cannot be bound onto itself: both refuse
        assert _run(app, tmp_path, bundle).returncode == _run("runc", tmp_path, bundle).returncode == 1
        return
    ours, theirs = _both(app, tmp_path, bundle)
    assert _mount_points(ours.stdout) == _mount_points(theirs.stdout)
    root = [line for line in ours.stdout.splitlines() if line.split()[4] == "/"][0]
    # runc 1.1.5 leaves "/" private; the spec (and runc 1.2) apply the propagation to it
    assert ("shared:" in root) == ("shared" in propagation), root


def test_joined_mount_namespace_like_runc(app, tmp_path):
    """A mount namespace given by path gets the rootfs set up in it, as runc does (it failed with
    pivot_root: Device or resource busy)."""
    nsdir = str(tmp_path / "ns")
    os.mkdir(nsdir)
    subprocess.run(["mount", "--bind", nsdir, nsdir], check=True)
    try:
        subprocess.run(["mount", "--make-private", nsdir], check=True)
        nsfile = os.path.join(nsdir, "mnt")
        bundle = _bundle(tmp_path, "bundle", ["sh", "-c", "ls /; cat /proc/self/mountinfo"], edit=lambda c: (
            c["linux"]["namespaces"].remove({"type": "mount"}),
            c["linux"]["namespaces"].append({"type": "mount", "path": nsfile})))
        out = {}
        for binary in (app, "runc"):
            open(nsfile, "w").close()
            subprocess.run(["unshare", "--mount=" + nsfile, "--propagation", "private", "true"], check=True)
            try:
                out[binary] = _run(binary, tmp_path, bundle)
            finally:
                subprocess.run(["umount", nsfile], check=True)
            assert out[binary].returncode == 0, (binary, out[binary].stderr)
        ours, theirs = out[app].stdout, out["runc"].stdout
        assert ours.split("\n", 1)[0] == theirs.split("\n", 1)[0] == "bin"
        assert _mount_points(ours) == _mount_points(theirs)
    finally:
        subprocess.run(["umount", "-l", nsdir])


def test_no_mount_namespace_like_runc(app, tmp_path):
    """Without a mount namespace runc mounts in its own namespace and chroots; it refuses masked
    and readonly paths there ("unable to restrict sys entries without a private MNT namespace")."""
    rootfs = _rootfs(tmp_path)

    def no_mount_ns(c):
        c["linux"]["namespaces"].remove({"type": "mount"})
    refused = _bundle(tmp_path, "refused", ["true"], rootfs, no_mount_ns)
    res = _run(app, tmp_path, refused)
    assert res.returncode == 1 and "unable to restrict sys entries without a private MNT namespace" in res.stderr
    theirs = _run("runc", tmp_path, refused)
    assert theirs.returncode == 1 and "without a private MNT namespace" in theirs.stderr

    bundle = _bundle(tmp_path, "bundle", ["sh", "-c", "ls /; pwd; cat /proc/self/mountinfo"], rootfs, lambda c: (
        no_mount_ns(c), c["linux"].pop("maskedPaths"), c["linux"].pop("readonlyPaths")))
    out = {}
    try:
        for binary in (app, "runc"):
            out[binary] = _run(binary, tmp_path, bundle)
            _umount_all(rootfs)
            assert out[binary].returncode == 0, (binary, out[binary].stderr)
    finally:
        _umount_all(rootfs)
    ours, theirs = out[app].stdout, out["runc"].stdout
    assert ours.split("/\n")[0] == theirs.split("/\n")[0]  # ls / and pwd
    assert _mount_points(ours) == _mount_points(theirs)


def test_host_root_as_rootfs_refused(app, tmp_path):
    link = str(tmp_path / "to-root")
    os.symlink("/", link)
    for path in ("/", link):
        bundle = tb.bundle(str(tmp_path / "bundle"), args=["true"], edit=lambda c: c.update(root={"path": path}))
        res = _run(app, tmp_path, bundle)
        assert res.returncode == 1 and "root.path" in res.stderr and "host's /" in res.stderr, res.stderr
        if path == link:  # runc: "invalid rootfs: not an absolute path, or a symlink"
            assert _run("runc", tmp_path, bundle).returncode == 1
