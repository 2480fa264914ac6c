"""The whole path a smith_toolbox target takes, against the real Debian mirror: `smith lock`
the tools, fetch the .debs by sha256, `smith extract` them, build the toolbox, run it.
Downloads are cached by sha256 and the toolbox by the lock's digests + the builder's source."""
import json
import os
import shutil
import tempfile

import pytest

from smith.testutil import crashcart as testing
from smith.crashcart.toolbox import build_toolbox
from smith.packages import extract_cli, lock_cli
from smith.packages.fetch import fetch_verified
from smith.testutil.debian import require_tools

MIRROR = "http://deb.debian.org/debian"
META = "/tmp/smith-test-cache/debian-meta"
DEBS = os.path.join(testing.CACHE, "debs")
TOOLS = ["bash", "coreutils", "procps", "strace"]

pytestmark = pytest.mark.debian_mirror


def mirror_toolbox(tmp):
    repo = os.path.join(tmp, "repo.json")
    with open(repo, "w") as f:
        json.dump({"kind": "deb", "url": MIRROR, "suites": ["bookworm", "bookworm-updates"],
                   "components": ["main"], "architectures": ["amd64"]}, f)
    lock_path = os.path.join(tmp, "lock.json")
    assert lock_cli.main(["--repo", repo, "--output", lock_path, "--cache-dir", META] + TOOLS) == 0
    with open(lock_path) as f:
        lock = json.load(f)
    key = testing._key(p["sha256"] for p in lock["packages"])
    path = os.path.join(testing.CACHE, "mirror-" + key)
    if not os.path.isdir(path):
        trees = []
        for p in lock["packages"]:
            deb = os.path.join(tmp, p["name"] + ".deb")
            with open(deb, "wb") as f:
                f.write(fetch_verified(p["url"], p["sha256"], p["size"], DEBS))
            tree = os.path.join(tmp, p["name"] + ".tar")
            assert extract_cli.main(["--output", tree, "--sha256", p["sha256"], "--name",
                                     p["name"], deb]) == 0
            trees.append(tree)
        os.makedirs(testing.CACHE, exist_ok=True)
        work = tempfile.mkdtemp(dir=testing.CACHE)
        try:
            build_toolbox(trees, os.path.join(work, "toolbox"))
            try:
                os.rename(os.path.join(work, "toolbox"), path)
            except OSError:
                pass  # another test process won the race
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return path, {p["name"]: p["version"] for p in lock["packages"]}


def test_toolbox_from_locked_debian_packages(tmp_path):
    require_tools("patchelf")
    toolbox, versions = mirror_toolbox(str(tmp_path))
    res = testing.run_mounted(toolbox, "echo $BASH_VERSION; ps -o comm= -p $$; "
                                       "strace -V | head -1; "
                                       "strace -qq -e trace=none ls /dev/crashcart/lib/libc.so.6")
    assert res.returncode == 0, res.stderr
    bash, ps, strace, ls = res.stdout.splitlines()
    upstream = lambda v: v.split(":")[-1].split("-")[0]
    assert bash.startswith(upstream(versions["bash"]) + "(")
    assert ps == "bash" and strace.endswith(" " + upstream(versions["strace"]))
    assert ls == "/dev/crashcart/lib/libc.so.6"
