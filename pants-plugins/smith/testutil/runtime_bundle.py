"""Helpers shared by the runtime's tests and bench/runtime_start.py (not used by the runtime).

- build_zipapp(): the runtime as `dist/smith-runtime` will be: a zipapp of the smith package
  (only what the runtime needs) with precompiled .pyc files, run by /usr/bin/python3 -I -S.
- busybox_rootfs(): a rootfs holding Debian's busybox-static and its applet links, cached under
  /tmp/smith-test-cache keyed by the busybox binary's sha256.
- bundle(): a bundle directory using that rootfs with a config.json from `runc spec`.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

SMITH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = "/tmp/smith-test-cache"
PYTHON = "/usr/bin/python3"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _runtime_files():
    from smith.runtime import ZIPAPP_ONLY
    for only in ZIPAPP_ONLY:
        full = os.path.join(os.path.dirname(SMITH_DIR), only)
        if only.endswith(".py"):
            yield only, full
            continue
        for dirpath, dirnames, filenames in os.walk(full):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith(".py") and not f.endswith("_test.py"):
                    path = os.path.join(dirpath, f)
                    yield "smith/" + os.path.relpath(path, SMITH_DIR), path


def build_zipapp(dest: str, python: str = PYTHON) -> str:
    """Write the runtime's zipapp to dest as //:smith-runtime does (smith.zipapp_cli: boot line,
    precompiled .pyc, stored entries), from the runtime sources of this checkout."""
    from smith.runtime import ZIPAPP_ONLY
    from smith.zipapp_cli import write_zipapp
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(dest))) as src:
        for arc, path in _runtime_files():
            os.makedirs(os.path.dirname(os.path.join(src, arc)), exist_ok=True)
            shutil.copyfile(path, os.path.join(src, arc))
        write_zipapp(src, "smith.runtime", dest, python, only=ZIPAPP_ONLY, precompile=python)
    return dest


def busybox_rootfs() -> str:
    """A cached rootfs: /bin/busybox (Debian busybox-static) plus a link per applet."""
    from smith.testutil.debian import require_tools
    require_tools("busybox")
    busybox = shutil.which("busybox", path=PATH)
    with open(busybox, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    root = os.path.join(CACHE, "runtime-busybox-" + digest)
    if os.path.isdir(root):
        return root
    tmp = tempfile.mkdtemp(dir=os.path.dirname(root) if os.path.isdir(CACHE) else _mkcache())
    try:
        for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "run", "read", "write"):
            os.makedirs(os.path.join(tmp, d))
        shutil.copy2(busybox, os.path.join(tmp, "bin/busybox"))
        applets = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE, check=True,
                                 universal_newlines=True, env={"PATH": PATH}).stdout.split()
        for a in applets:
            if a != "busybox":
                os.symlink("busybox", os.path.join(tmp, "bin", a))
        with open(os.path.join(tmp, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\nsmith:x:10:10:smith:/:/bin/sh\n")
        with open(os.path.join(tmp, "etc/group"), "w") as f:
            f.write("root:x:0:\nsmith:x:10:\n")
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, root)
        except OSError:  # another test process won the race
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _mkcache() -> str:
    os.makedirs(CACHE, exist_ok=True)
    return CACHE


def default_config() -> dict:
    """`runc spec`'s default config (cached), with terminal off."""
    path = os.path.join(_mkcache(), "runtime-runc-spec.json")
    if not os.path.exists(path):
        from smith.testutil.debian import require_tools
        require_tools("runc")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["runc", "spec"], cwd=tmp, check=True, env={"PATH": PATH})
            shutil.move(os.path.join(tmp, "config.json"), path + ".tmp%d" % os.getpid())
            os.rename(path + ".tmp%d" % os.getpid(), path)
    with open(path) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    return config


def bundle(directory: str, args=None, config: dict = None, edit=None) -> str:
    """Make directory a bundle: rootfs symlink-free copy is not needed, root.path points to the
    cached rootfs (read-only root, so sharing it is safe)."""
    os.makedirs(directory, exist_ok=True)
    config = config or default_config()
    config["root"] = {"path": busybox_rootfs(), "readonly": True}
    if args is not None:
        config["process"]["args"] = args
    if edit:
        edit(config)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return directory


def cached_zipapp() -> str:
    """build_zipapp() once per version of the runtime's sources and of the zipapp writer
    (cache key: their sha256)."""
    h = hashlib.sha256(PYTHON.encode())
    writer = [(n, os.path.join(SMITH_DIR, n)) for n in ("zipapp_cli.py", "zipapp_boot.py")]
    for arc, src in writer + list(_runtime_files()):
        with open(src, "rb") as f:
            h.update(arc.encode() + b"\0" + f.read() + b"\0")
    path = os.path.join(_mkcache(), "smith-runtime-" + h.hexdigest()[:16])
    if not os.path.exists(path):
        build_zipapp(path)
    return path


def runtime(app: str, root: str, *args, cwd=None, input=None, timeout=60, detached=False):
    """Run the runtime zipapp (or another runtime binary) with a private --root.
    detached: the container outlives the command, so it must not inherit our output pipes."""
    out = subprocess.DEVNULL if detached else subprocess.PIPE
    return subprocess.run([app, "--root", root] + list(args), cwd=cwd, input=input,
                          stdout=out, stderr=out, universal_newlines=True,
                          env={"PATH": PATH, "HOME": "/root", "LC_ALL": "C.UTF-8"}, timeout=timeout)


def leftovers(cid: str) -> list:
    """Anything a container may leave behind on the host: cgroup dirs and mounts naming it."""
    from smith.runtime import cgroups
    found = []
    for d in os.listdir("/sys/fs/cgroup"):
        p = os.path.join("/sys/fs/cgroup", d, cid)
        if os.path.exists(p):
            found.append(p)
    found += [p for p in cgroups.plan(cid, "").values() if os.path.exists(p) and p not in found]
    with open("/proc/self/mountinfo") as f:
        found += [line.strip() for line in f if ("/%s/" % cid) in line or ("/%s " % cid) in line]
    return found
