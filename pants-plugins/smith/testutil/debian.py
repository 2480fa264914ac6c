"""Install the Debian tools a test needs (skopeo, runc, ...) the first time it needs them.

Tests run as root on a fresh machine; nothing may be installed by hand, so each test asks
for its tools here. An exclusive lock serialises concurrent pytest processes that Pants
runs in parallel, and `apt-get update` runs at most once per hour per machine.
"""
import fcntl
import os
import shutil
import subprocess
import time
from typing import Dict, Iterable

import pytest

LOCK = "/tmp/smith-apt.lock"
STAMP = "/tmp/smith-apt.updated"

# Executable -> Debian package that ships it.
PACKAGE_OF: Dict[str, str] = {
    "runc": "runc",
    "crun": "crun",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "podman": "podman",
    "docker-registry": "docker-registry",
    "rpm": "rpm",
    "rpmbuild": "rpm",
    "createrepo_c": "createrepo-c",
    "dnf": "dnf",
    "dpkg-scanpackages": "dpkg-dev",
    "apt-ftparchive": "apt-utils",
    "dpkg-deb": "dpkg",
    "debootstrap": "debootstrap",
    "busybox": "busybox-static",
    "strace": "strace",
    "valgrind": "valgrind",
    "hyperfine": "hyperfine",
    "gpgv": "gpgv",
    "gpg": "gnupg",
    "redis-cli": "redis-tools",
    "redis-server": "redis-server",
    "curl": "curl",
    "patchelf": "patchelf",
    "htpasswd": "apache2-utils",
    "openssl": "openssl",
    "zstd": "zstd",
    "xz": "xz-utils",
    "gcc": "gcc",
    "readelf": "binutils",
    "ldconfig": "libc-bin",
    "chroot": "coreutils",
    "getent": "libc-bin",
    "newuidmap": "uidmap",
}

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _which(tool: str) -> bool:
    return shutil.which(tool, path=PATH) is not None


def _apt(args, env) -> None:
    proc = subprocess.run(["apt-get", *args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError("apt-get %s failed:\n%s" % (" ".join(args), proc.stdout[-4000:]))


def install_packages(packages: Iterable[str]) -> None:
    """apt-get install the given Debian packages (as root), once, under a machine-wide lock."""
    packages = sorted(set(packages))
    if os.geteuid() != 0:
        pytest.fail("installing Debian packages %s needs root; run the tests as root" % packages)
    env = {"PATH": PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [p for p in packages if subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", p], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True).stdout != "install ok installed"]
        if not missing:
            return
        fresh = os.path.exists(STAMP) and time.time() - os.path.getmtime(STAMP) < 3600
        if not fresh:
            _apt(["update", "-qq"], env)
            open(STAMP, "w").close()
        _apt(["install", "-y", "-qq", "--no-install-recommends", *missing], env)


def require_tools(*tools: str) -> None:
    """Make sure each executable is on PATH, installing its Debian package if needed."""
    missing = [t for t in tools if not _which(t)]
    if missing:
        install_packages(PACKAGE_OF[t] for t in missing)
    still = [t for t in tools if not _which(t)]
    if still:
        pytest.fail("tools %s are still missing after installing their packages" % still)


def tool_env(**extra: str) -> Dict[str, str]:
    """An environment for running Debian tools from a Pants sandbox (which has no PATH)."""
    env = {"PATH": PATH, "LC_ALL": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env
