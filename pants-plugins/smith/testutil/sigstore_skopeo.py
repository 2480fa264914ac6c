"""A skopeo that really signs and verifies sigstore signatures, for interop tests.

Debian bookworm's skopeo 1.9.3 (and podman 4.3.1) are built with a Debian-local change that
disables sigstore: `--sign-by-sigstore-private-key` fails with "creating signature: Debian-local
change: sigstore disabled", and a policy.json `sigstoreSigned` requirement rejects every image
that has signatures with "Source image rejected: Debian-local change: sigstore disabled" (an image
without any is still refused with "A signature was required, but no signature exists").

Debian trixie's skopeo 1.18.0 has sigstore enabled. It needs glibc 2.38, so it is fetched with
apt-get into a private directory (its own sources list, lists and cache: the machine's apt state
and installed packages are untouched), together with trixie's libc and the libraries it links, and
run through trixie's own dynamic loader. Needs the Debian mirror (tests using it are marked
`debian_mirror`); the result is cached machine-wide under a lock.
"""
import fcntl
import glob
import os
import subprocess
import sys
from typing import List

import pytest

from smith.testutil.debian import PATH, tool_env

ROOT = "/tmp/smith-test-cache/skopeo-trixie"
SUITE = "trixie"
PACKAGES = ["skopeo", "libc6", "libgpgme11t64", "libsqlite3-0", "libassuan9", "libgpg-error0"]
VERSION = "skopeo version 1.18"


def _apt_options() -> List[str]:
    return ["-o", "Dir::Etc::SourceList=%s/sources.list" % ROOT,
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::State::Lists=%s/lists" % ROOT,
            "-o", "Dir::State::Status=%s/status" % ROOT,
            "-o", "Dir::Cache=%s/cache" % ROOT,
            "-o", "APT::Sandbox::User=root", "-qq"]


def _run(args: List[str], cwd: str = ROOT) -> None:
    proc = subprocess.run(args, cwd=cwd, env={"PATH": PATH, "LC_ALL": "C"},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        pytest.skip("cannot fetch Debian %s's skopeo (needs the Debian mirror): %s failed:\n%s"
                    % (SUITE, " ".join(args[:2]), proc.stdout[-2000:]))


def sigstore_skopeo() -> List[str]:
    """The command prefix that runs trixie's skopeo 1.18 on this machine."""
    os.makedirs(ROOT, exist_ok=True)
    root = os.path.join(ROOT, "root")
    libdir = os.path.join(root, "usr", "lib", "x86_64-linux-gnu")
    command = [os.path.join(libdir, "ld-linux-x86-64.so.2"), "--library-path", libdir,
               os.path.join(root, "usr", "bin", "skopeo")]
    with open(os.path.join(ROOT, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(ROOT, "ready")):
            for d in ("lists/partial", "cache/archives/partial", "debs"):
                os.makedirs(os.path.join(ROOT, d), exist_ok=True)
            open(os.path.join(ROOT, "status"), "a").close()
            with open(os.path.join(ROOT, "sources.list"), "w") as f:
                f.write("deb http://deb.debian.org/debian %s main\n" % SUITE)
            _run(["apt-get", *_apt_options(), "update"])
            _run(["apt-get", *_apt_options(), "download", *PACKAGES],
                 cwd=os.path.join(ROOT, "debs"))
            for deb in sorted(glob.glob(os.path.join(ROOT, "debs", "*.deb"))):
                _run(["dpkg-deb", "-x", deb, root])
            open(os.path.join(ROOT, "ready"), "w").close()
    out = subprocess.run(command + ["--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    if VERSION not in out.stdout:
        pytest.fail("trixie's skopeo does not run here: %s" % out.stdout[-1000:])
    return command


def run_smith(args: List[str], home: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m smith ARGS` with this interpreter's path, so the subprocess finds the compiled
    libraries (cryptography, PyNaCl) that the test itself imports (in Pants: from the PEX)."""
    path = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run([sys.executable, "-m", "smith", *args],
                          env=tool_env(PYTHONPATH=path, HOME=home, **env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
