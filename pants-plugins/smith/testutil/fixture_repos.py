"""Test fixtures: real package repositories built by the tests themselves and served over
HTTP on 127.0.0.1. Built repositories are cached under /tmp/smith-test-cache keyed by the
hash of this file (their only input), so only the first test run pays for gcc/dpkg/gpg.
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, Iterator, List, Tuple

from smith.testutil.debian import require_tools, tool_env

CACHE = "/tmp/smith-test-cache"

GREET_C = """
#include <stdio.h>
const char *greet(void) { return "hello from libgreet " VERSION; }
"""
HELLO_C = """
#include <stdio.h>
const char *greet(void);
int main(void) { puts(greet()); return 0; }
"""

# name, version, arch, control fields, files {path: (mode, bytes or "elf:NAME")}
DebSpec = Tuple[str, str, str, Dict[str, str], Dict[str, Tuple[int, object]]]

DEB_PACKAGES: List[DebSpec] = [
    ("libgreet1", "0.9-1", "amd64", {},
     {"lib/x86_64-linux-gnu/libgreet.so.1": (0o644, "elf:libgreet-0.9")}),
    ("libgreet1", "1.1-1", "amd64", {},
     {"lib/x86_64-linux-gnu/libgreet.so.1": (0o644, "elf:libgreet-1.1")}),
    ("hello", "2.0-1", "amd64",
     {"Depends": "libgreet1 (>= 1.0), no-such-package | hello-data, default-greeting"},
     {"bin/hello": (0o755, "elf:hello"), "bin/hi": (0o777, "->hello"),
      "sbin/hello-admin": (0o777, "->../bin/hello")}),
    ("hello-data", "1.0", "all", {}, {"usr/share/hello/data.txt": (0o644, b"data\n")}),
    ("greeting-en", "1.0", "all", {"Provides": "default-greeting", "Priority": "optional"},
     {"usr/share/hello/greeting": (0o644, b"hello\n")}),
    ("greeting-fr", "1.0", "all", {"Provides": "default-greeting", "Priority": "extra"},
     {"usr/share/hello/greeting": (0o644, b"bonjour\n")}),
    ("cycle-a", "1.0", "all", {"Depends": "cycle-b"}, {"usr/share/cycle/a": (0o644, b"a\n")}),
    ("cycle-b", "1.0", "all", {"Depends": "cycle-a (>= 1.0)"}, {"usr/share/cycle/b": (0o644, b"b\n")}),
    ("top", "1.0", "all", {"Depends": "middle"}, {}),
    ("middle", "1.0", "all", {"Depends": "libmissing (>= 2)"}, {}),
    ("conf-a", "1.0", "all", {"Conflicts": "conf-b"}, {}),
    ("conf-b", "1.0", "all", {}, {}),
    ("conf-c", "1.0", "all", {}, {}),
    ("wants-both", "1.0", "all", {"Depends": "conf-a, conf-b"}, {}),
    ("picky", "1.0", "all", {"Depends": "conf-a | conf-c, conf-b"}, {}),
]

# data.tar compression other than the default xz, so every reader path is exercised.
DEB_COMPRESSION = {"hello-data": "gzip", "greeting-en": "zstd", "libgreet1": "none"}


def _run(cmd: List[str], cwd: str = None, env: Dict[str, str] = None, stdout=None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (cmd, proc.stderr.decode(errors="replace")))


def _source_key() -> str:
    with open(__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _compile(work: str) -> Dict[str, bytes]:
    """Real ELF files: two versions of libgreet.so.1 and a hello linked against it."""
    out = {}
    for version in ("0.9", "1.1"):
        src = os.path.join(work, "greet.c")
        with open(src, "w") as f:
            f.write(GREET_C)
        lib = os.path.join(work, "libgreet.so.1")
        _run(["gcc", "-shared", "-fPIC", "-DVERSION=\"%s\"" % version, "-Wl,-soname,libgreet.so.1",
              "-o", lib, src])
        with open(lib, "rb") as f:
            out["libgreet-" + version] = f.read()
    src = os.path.join(work, "hello.c")
    with open(src, "w") as f:
        f.write(HELLO_C)
    exe = os.path.join(work, "hello")
    _run(["gcc", "-o", exe, src, os.path.join(work, "libgreet.so.1")])
    with open(exe, "rb") as f:
        out["hello"] = f.read()
    return out


def _gpg_key(home: str, keyring: str, name: str) -> None:
    os.makedirs(home, mode=0o700)
    env = tool_env(GNUPGHOME=home)
    _run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "%s <%s@smith.test>" % (name, name),
          "ed25519", "sign", "never"], env=env)
    with open(keyring, "wb") as f:
        _run(["gpg", "--batch", "--export"], env=env, stdout=f)


def _build_deb_repo(root: str) -> None:
    require_tools("gcc", "dpkg-deb", "dpkg-scanpackages", "apt-ftparchive", "gpg", "gpgv", "xz")
    work = os.path.join(root, "work")
    os.makedirs(work)
    elf = _compile(work)
    pool = os.path.join(root, "repo", "pool", "main")
    os.makedirs(pool)
    for name, version, arch, fields, files in DEB_PACKAGES:
        tree = os.path.join(work, "%s_%s" % (name, version))
        os.makedirs(os.path.join(tree, "DEBIAN"))
        control = {"Package": name, "Version": version, "Architecture": arch,
                   "Maintainer": "smith tests <t@smith.test>", "Description": "smith test package"}
        control.update(fields)
        with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
            f.write("".join("%s: %s\n" % kv for kv in control.items()))
        for path, (mode, content) in files.items():
            full = os.path.join(tree, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if isinstance(content, str) and content.startswith("->"):
                os.symlink(content[2:], full)
                continue
            data = elf[content[4:]] if isinstance(content, str) else content
            with open(full, "wb") as f:
                f.write(data)
            os.chmod(full, mode)
        _run(["dpkg-deb", "--root-owner-group", "-Z" + DEB_COMPRESSION.get(name, "xz"), "--build", tree,
              os.path.join(pool, "%s_%s_%s.deb" % (name, version, arch))])
    repo = os.path.join(root, "repo")
    dist = os.path.join(repo, "dists", "stable")
    index_dir = os.path.join(dist, "main", "binary-amd64")
    os.makedirs(index_dir)
    with open(os.path.join(index_dir, "Packages"), "wb") as f:
        _run(["dpkg-scanpackages", "--multiversion", "pool"], cwd=repo, stdout=f)
    _run(["xz", "-k", os.path.join(index_dir, "Packages")])
    with open(os.path.join(root, "Release.tmp"), "wb") as f:
        _run(["apt-ftparchive", "-o", "APT::FTPArchive::Release::Codename=stable",
              "-o", "APT::FTPArchive::Release::Suite=stable",
              "-o", "APT::FTPArchive::Release::Architectures=amd64",
              "-o", "APT::FTPArchive::Release::Components=main", "release", "."], cwd=dist, stdout=f)
    shutil.move(os.path.join(root, "Release.tmp"), os.path.join(dist, "Release"))
    _gpg_key(os.path.join(root, "gnupg"), os.path.join(root, "keyring.gpg"), "archive")
    _gpg_key(os.path.join(root, "gnupg-other"), os.path.join(root, "other-keyring.gpg"), "other")
    env = tool_env(GNUPGHOME=os.path.join(root, "gnupg"))
    _run(["gpg", "--batch", "--yes", "--clearsign", "-o", os.path.join(dist, "InRelease"),
          os.path.join(dist, "Release")], env=env)
    _run(["gpg", "--batch", "--yes", "-abs", "-o", os.path.join(dist, "Release.gpg"),
          os.path.join(dist, "Release")], env=env)
    shutil.rmtree(work)


# name, version, arch, payload compression, spec header lines, files {path: (mode, "elf:NAME" or bytes)}
RpmSpec = Tuple[str, str, str, str, List[str], Dict[str, Tuple[int, object]]]

RPM_PACKAGES: List[RpmSpec] = [
    ("librgreet", "0.9", "x86_64", "w9.gzdio", [],
     {"/usr/lib64/libgreet.so.1": (0o755, "elf:libgreet-0.9")}),
    ("librgreet", "1.2", "x86_64", "w9.gzdio", [],
     {"/usr/lib64/libgreet.so.1": (0o755, "elf:libgreet-1.1")}),
    ("rhelper", "1.0", "noarch", "w2.xzdio", [],
     {"/usr/bin/rhelper": (0o755, b"#!/bin/sh\necho helper\n")}),
    ("rgreet-en", "1.0", "noarch", "w2.xzdio", [], {"/usr/share/rhello/greeting": (0o644, b"hello\n")}),
    ("rgreet-fr", "1.0", "noarch", "w2.xzdio", [], {"/usr/share/rhello/greeting": (0o644, b"salut\n")}),
    ("rhello", "2.0", "x86_64", "w19.zstdio",
     ["Requires: librgreet >= 1.0", "Requires: /usr/bin/rhelper", "Requires: (rgreet-en or rgreet-fr)",
      "Requires: libgreet.so.1()(64bit)"],
     {"/usr/bin/rhello": (0o755, "elf:hello")}),
    ("rneeds-rich", "1.0", "noarch", "w2.xzdio", ["Requires: (rgreet-en if rhello)"], {}),
]

SPEC = """Name: {name}
Version: {version}
Release: 1
Summary: smith test package
License: MIT
BuildArch: {arch}
AutoReq: no
{header}
%description
smith test package

%install
{install}

%files
{files}
"""


def _build_rpm_repo(root: str) -> None:
    require_tools("gcc", "rpmbuild", "createrepo_c")
    work = os.path.join(root, "work")
    os.makedirs(work)
    elf = _compile(work)
    top = os.path.join(work, "rpmbuild")
    packages = os.path.join(root, "repo", "Packages")
    os.makedirs(packages)
    for name, version, arch, payload, header, files in RPM_PACKAGES:
        install, listed = [], []
        for path, (mode, content) in sorted(files.items()):
            src = os.path.join(work, "%s-%s-%s" % (name, version, os.path.basename(path)))
            with open(src, "wb") as f:
                f.write(elf[content[4:]] if isinstance(content, str) else content)
            install.append("install -D -m %o %s %%{buildroot}%s" % (mode, src, path))
            listed.append(path)
        spec = os.path.join(work, "%s-%s.spec" % (name, version))
        with open(spec, "w") as f:
            f.write(SPEC.format(name=name, version=version, arch=arch, header="\n".join(header),
                                install="\n".join(install) or "true", files="\n".join(listed)))
        _run(["rpmbuild", "-bb", "--define", "_topdir " + top, "--define", "debug_package %{nil}",
              "--define", "__os_install_post %{nil}", "--define", "_build_id_links none",
              "--define", "_binary_payload " + payload, "--define", "_rpmdir " + packages,
              "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", spec])
    _run(["createrepo_c", "--simple-md-filenames", os.path.join(root, "repo")])
    shutil.rmtree(work)


def rpm_repo() -> str:
    """Directory with repo/ (Packages/*.rpm + repodata/ by createrepo_c)."""
    return cached_build("rpm-repo", _build_rpm_repo)


def cached_build(name: str, build) -> str:
    """Build into /tmp/smith-test-cache/NAME-KEY once (atomically), return that directory."""
    final = os.path.join(CACHE, "%s-%s" % (name, _source_key()))
    if os.path.isdir(final):
        return final
    os.makedirs(CACHE, exist_ok=True)
    # Test files run in parallel: one builds, the others wait for it.
    with open(os.path.join(CACHE, ".%s.lock" % name), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(final):
            _build_once(name, build, final)
    return final


def _build_once(name: str, build, final: str) -> None:
    tmp = tempfile.mkdtemp(dir=CACHE, prefix=".%s-" % name)
    try:
        build(tmp)
        os.rename(tmp, final)
        for old in os.listdir(CACHE):   # builds from older versions of this file
            if old.startswith(name + "-") and old != os.path.basename(final):
                shutil.rmtree(os.path.join(CACHE, old), ignore_errors=True)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(final):
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def deb_repo() -> str:
    """Directory with repo/ (pool + dists/stable), keyring.gpg and other-keyring.gpg."""
    return cached_build("deb-repo", _build_deb_repo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(directory: str) -> Iterator[str]:
    """Serve DIRECTORY with `python3 -m http.server` on 127.0.0.1; yields the base URL."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                             "--directory", directory], env=tool_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    try:
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("http.server did not start on port %d" % port)
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
