"""Paths inside a root follow symlinks like the kernel in a chroot, and never leave the root."""
import os
import shutil
import subprocess

import pytest

from smith.elf.closure import compute_closure
from smith.elf.rootfs import RootFS, glob_in_root
from smith.errors import SmithError
from smith.testutil.debian import require_tools, tool_env


@pytest.fixture
def root(tmp_path) -> str:
    r = str(tmp_path / "root")
    for d in ("usr/lib/x86_64-linux-gnu", "usr/lib64", "opt/a/b", "opt/c", "etc"):
        os.makedirs(os.path.join(r, d))
    open(r + "/usr/lib/x86_64-linux-gnu/libx.so.1", "w").close()
    open(r + "/opt/c/data", "w").close()
    open(r + "/opt/c/.hidden", "w").close()
    os.symlink("usr/lib", r + "/lib")  # merged /usr
    os.symlink("/lib/x86_64-linux-gnu/libx.so.1", r + "/usr/lib64/libx.so.1")  # absolute: inside the root
    os.symlink("/opt/a/b", r + "/opt/ab")  # a symlinked dir; `..` after it goes to /opt/a
    os.symlink("loop2", r + "/opt/loop1")
    os.symlink("loop1", r + "/opt/loop2")
    os.symlink("../../../../..//etc/shadow", r + "/opt/escape")
    os.symlink("/etc", r + "/opt/etc")  # would be the host's /etc if followed on the host
    return r


def _chroot_readlink(root: str, path: str) -> str:
    """What the kernel makes of `path` inside the root (coreutils realpath needs nothing but libc)."""
    proc = subprocess.run(["chroot", root, "/realpath", "-e", path], env=tool_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def test_links_are_followed_inside_the_root_and_recorded(root: str) -> None:
    fs = RootFS(root)
    r = fs.resolve("/usr/lib64/libx.so.1")
    assert r.path == "/usr/lib/x86_64-linux-gnu/libx.so.1" and r.is_file
    assert r.links == ("/usr/lib64/libx.so.1", "/lib")  # the file link, then the /lib dir link it uses
    assert fs.resolve("/opt/ab/../c/data") is None  # /opt/a/c does not exist, though /opt/c/data does
    assert fs.resolve("/opt/ab/../b").path == "/opt/a/b"  # `..` of the link's target, not of /opt
    assert fs.resolve("/opt/missing/x") is None
    assert fs.resolve("/opt/c/data/x") is None  # not a directory
    assert fs.resolve("/opt/etc").path == "/etc"


def test_resolution_agrees_with_the_kernel(root: str) -> None:
    require_tools("chroot")
    # Borrow coreutils' realpath, with the libs it needs (found by our closure), into the root.
    for p in compute_closure("/", ["/usr/bin/realpath"]).paths:
        dst = root + p
        if os.path.lexists(dst):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(p):
            os.symlink(os.readlink(p), dst)
        else:
            shutil.copy2(p, dst)
    os.symlink("/usr/bin/realpath", root + "/realpath")
    fs = RootFS(root)
    for path in ("/usr/lib64/libx.so.1", "/opt/ab/../b", "/opt/etc", "/lib/x86_64-linux-gnu/libx.so.1",
                 "/opt/missing", "/opt/ab/../c/data"):
        mine = fs.resolve(path)
        assert (mine.path if mine else "") == _chroot_readlink(root, path), path


def test_loops_and_escapes_are_refused(root: str) -> None:
    fs = RootFS(root)
    with pytest.raises(SmithError, match="too many levels of symlinks"):
        fs.resolve("/opt/loop1")
    with pytest.raises(SmithError, match=r"symlink /opt/escape -> \.\./.* climbs out of the root"):
        fs.resolve("/opt/escape")
    assert RootFS("/").resolve("/../../usr/bin/../bin").path == os.path.realpath("/usr/bin")


def test_glob_stays_in_the_root(root: str) -> None:
    fs = RootFS(root)
    assert glob_in_root(fs, "/opt/c/*") == ["/opt/c/data"]
    assert glob_in_root(fs, "/opt/c/.*") == ["/opt/c/.hidden"]
    assert glob_in_root(fs, "/lib/*/lib*.so.*") == ["/lib/x86_64-linux-gnu/libx.so.1"]
    assert glob_in_root(fs, "/opt/etc/*") == []  # the root's empty /etc, not the host's
    assert "/usr/lib/x86_64-linux-gnu/libx.so.1" in glob_in_root(fs, "/usr/**/*.so.1")
