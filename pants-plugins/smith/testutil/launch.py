"""Test helpers: small busybox images written by smith.oci's own CLIs (cached by their
inputs), a throw-away store, and checks that a store holds nothing of finished containers."""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

import pytest

import smith
from smith import linux
from smith.launch import kernel
from smith.testutil.debian import require_tools, tool_env

CACHE = "/tmp/smith-test-cache/launch-images"
RECIPE = "3"  # bump when the recipe below changes
BUSYBOX = "/bin/busybox"


def smith_env() -> Dict[str, str]:
    return tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))


def smith_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "smith", *args]


def launch_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "smith.launch", *args]


def _run(argv: List[str]) -> None:
    proc = subprocess.run(argv, env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise AssertionError("%s failed:\n%s" % (argv, proc.stdout.decode(errors="replace")))


def _tree(path: str, files: Dict[str, str]) -> str:
    os.makedirs(path)
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    return path


def busybox_image(extra_layers: List[Tuple[Dict[str, str], List[str]]] = (),
                  config: Optional[Dict] = None, skeleton: bool = True,
                  base_files: Optional[Dict[str, str]] = None) -> str:
    """An OCI layout (tag `latest`) with /bin/busybox (+ `base_files`) owned by 10:10 in one
    layer, the microcontainer skeleton layer unless `skeleton` is false, plus one layer per
    ({image path: file content}, [whiteout paths]) in `extra_layers`."""
    require_tools("busybox")
    cfg = config or {"entrypoint": ["/bin/busybox"], "cmd": ["echo", "hello from busybox"],
                     "user": "10:10", "env": {"PATH": "/bin"}}
    h = hashlib.sha256()
    with open(BUSYBOX, "rb") as f:
        h.update(f.read())
    h.update(json.dumps([RECIPE, extra_layers, cfg, skeleton, base_files], sort_keys=True).encode())
    out = os.path.join(CACHE, h.hexdigest()[:16])
    if os.path.isdir(out):
        return out
    os.makedirs(CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".build-", dir=CACHE)
    try:
        argv = smith_cmd("layer", "--output", os.path.join(work, "l0"), "--dir", "bin/busybox=" + BUSYBOX)
        if base_files:
            argv += ["--dir", "=" + _tree(os.path.join(work, "files0"), base_files)]
        _run(argv)
        layers = ["--layer", os.path.join(work, "l0")]
        for i, (files, deletes) in enumerate(extra_layers, 1):
            tree = _tree(os.path.join(work, "files%d" % i), files)
            argv = smith_cmd("layer", "--output", os.path.join(work, "l%d" % i), "--dir", "=" + tree)
            for d in deletes:
                argv += ["--delete", d]
            _run(argv)
            layers += ["--layer", os.path.join(work, "l%d" % i)]
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(cfg, f)
        _run(smith_cmd("image", "--output", os.path.join(work, "layout"), "--tag", "latest",
                       "--config", os.path.join(work, "config.json"), *layers,
                       *([] if skeleton else ["--no-skeleton"])))
        try:
            os.rename(os.path.join(work, "layout"), out)
        except OSError:
            pass  # built meanwhile by a concurrent test process: same inputs, same bytes
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def new_store() -> str:
    """A store under /tmp whose path a container's unprivileged root can traverse."""
    path = tempfile.mkdtemp(prefix="smith-launch-test-", dir="/tmp")
    os.chmod(path, 0o711)
    return path


def leftovers(store: str) -> List[str]:
    """What finished containers left in `store` (empty when all cleaned up)."""
    found = ["mount " + m for m in kernel.mounts_under(store)]
    ids = os.path.join(store, "ids.json")
    if os.path.exists(ids):
        with open(ids) as f:
            found += ["id range %r" % r for r in json.load(f)["ranges"]]
    cdir = os.path.join(store, "c")
    if os.path.isdir(cdir):
        found += ["container dir " + n for n in os.listdir(cdir)]
    tag = "smith-" + hashlib.sha256(os.path.realpath(store).encode()).hexdigest()[:8]
    listed = subprocess.run(["runc", "list", "-q"], env=tool_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True).stdout.split()
    found += ["runc container " + c for c in listed if c.startswith(tag)]
    found += ["cgroup " + g for g in glob.glob("/sys/fs/cgroup/*/%s-*" % tag)
              + glob.glob("/sys/fs/cgroup/*/*/%s-*" % tag)]
    return found


def remove_store(store: str) -> None:
    for m in kernel.mounts_under(store):
        linux.umount(m, detach=True)
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
def store():
    """A fresh layer store for one test; the test fails if it leaves a container, mount or
    file behind in it. Import it into a test module to use it."""
    path = new_store()
    yield path
    try:
        assert leftovers(path) == []
    finally:
        remove_store(path)
