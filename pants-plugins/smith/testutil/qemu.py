"""Foreign platforms in tests: `require_emulation` sets up qemu-user-static the way the launcher
does in a Pants test (smith.launch.emulation: apt-get install, binfmt_misc mounted, Debian's entry
registered with the F flag, an existing registration reused only if it has F) and skips the test
with the reason where that is impossible; `busybox_index` is a real two-platform image (linux/amd64
+ linux/arm64) of Debian's busybox-static, locked from the mirror, fetched by sha256 and put
together with smith's own CLIs (smith layer, smith image --platform, smith image-index)."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from smith.launch import emulation
from smith.packages import lock_cli
from smith.packages.fetch import fetch_verified
from smith.registry.platforms import parse_platform
from smith.testutil.debian import require_tools
from smith.testutil.launch import smith_cmd, smith_env

MIRROR = "http://deb.debian.org/debian"
CACHE = "/tmp/smith-test-cache/multiarch"
META = "/tmp/smith-test-cache/debian-meta"
RECIPE = "1"  # bump when the image recipe below changes
ARCHES = ("amd64", "arm64")


def require_emulation(platform: str = "linux/arm64") -> None:
    """Make `platform` runnable here (installing and registering qemu the first time), or skip."""
    reason = emulation.prepare(parse_platform(platform), "install")
    if reason is not None:
        pytest.skip("%s images cannot run here: %s" % (platform, reason))


def _run(argv, **kw) -> str:
    proc = subprocess.run(argv, env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if proc.returncode != 0:
        raise AssertionError("%s failed:\n%s" % (argv, proc.stdout.decode(errors="replace")))
    return proc.stdout.decode()


def busybox_pins(tmp: str) -> list:
    """busybox-static for each of ARCHES, locked from the Debian mirror (one lockfile)."""
    repo = os.path.join(tmp, "repo.json")
    with open(repo, "w") as f:
        json.dump({"kind": "deb", "url": MIRROR, "suites": ["bookworm", "bookworm-updates"],
                   "components": ["main"], "architectures": list(ARCHES)}, f)
    lock = os.path.join(tmp, "lock.json")
    assert lock_cli.main(["--repo", repo, "--output", lock, "--cache-dir", META, "busybox-static"]) == 0
    with open(lock) as f:
        pins = json.load(f)["packages"]
    assert sorted(p["architecture"] for p in pins) == sorted(ARCHES), pins
    return sorted(pins, key=lambda p: ARCHES.index(p["architecture"]))


def busybox_index() -> str:
    """An OCI layout tagged `latest` whose entry is an index of linux/amd64 and linux/arm64
    images, each /bin/busybox (owned 10:10) plus smith's skeleton; cached by the packages'
    sha256 and this recipe."""
    require_tools("dpkg-deb")
    tmp = tempfile.mkdtemp(prefix="smith-multiarch-")
    try:
        pins = busybox_pins(tmp)
        key = hashlib.sha256(json.dumps([RECIPE] + [p["sha256"] for p in pins]).encode()).hexdigest()
        out = os.path.join(CACHE, key[:16])
        if os.path.isdir(out):
            return out
        config = os.path.join(tmp, "config.json")
        with open(config, "w") as f:
            json.dump({"entrypoint": ["/bin/busybox"], "cmd": ["uname", "-m"], "user": "10:10",
                       "env": {"PATH": "/bin"}}, f)
        index_args = []
        for p in pins:
            arch = p["architecture"]
            deb = os.path.join(tmp, arch + ".deb")
            with open(deb, "wb") as f:
                f.write(fetch_verified(p["url"], p["sha256"], p["size"], os.path.join(CACHE, "debs")))
            tree = os.path.join(tmp, arch)
            _run(["dpkg-deb", "-x", deb, tree])
            layer, layout = os.path.join(tmp, arch + "-layer"), os.path.join(tmp, arch + "-image")
            _run(smith_cmd("layer", "--output", layer, "--dir", "bin/busybox=" + os.path.join(tree, "bin", "busybox")))
            _run(smith_cmd("image", "--output", layout, "--tag", "latest", "--config", config,
                           "--layer", layer, "--platform", "linux/" + arch))
            index_args += ["--platform-layout", "linux/%s=%s" % (arch, layout)]
        _run(smith_cmd("image-index", "--output", os.path.join(tmp, "index"), "--tag", "latest", *index_args))
        os.makedirs(CACHE, exist_ok=True)
        try:
            os.rename(os.path.join(tmp, "index"), out)
        except OSError:
            pass  # built meanwhile by a concurrent test process: same inputs, same bytes
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
