"""Paths inside a root follow symlinks like the kernel in a chroot, and never leave the root."""
import os
import shutil
import stat
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


# -- `--path '/**'` / `--keep '/**'`: every entry of a hostile tree, inside the root, no crash ---------
@pytest.fixture
def hostile_tree(tmp_path):
    """Makes _hostile_tree roots; removes their deep trees with rm -rf (shutil.rmtree, which pytest
    cleans up with, recurses once per level)."""
    made = []

    def make(depth: int = 1500) -> str:
        made.append(_hostile_tree(tmp_path / ("h%d" % len(made)), depth))
        return made[-1]

    yield make
    for r in made:
        subprocess.run(["rm", "-rf", r], check=True)


def _hostile_tree(tmp_path, depth: int = 1500) -> str:
    """A root with what a stranger's image may hold: dangling, looping and escaping links, links to
    the host, special files, and a tree deeper than Python's recursion limit."""
    r = tmp_path / "hroot"
    (r / "etc/ssl/certs").mkdir(parents=True)
    (r / "usr/share/ca").mkdir(parents=True)
    (r / "usr/share/ca/a.crt").write_text("cert\n")
    os.symlink("/usr/share/ca/a.crt", str(r / "etc/ssl/certs/a.pem"))  # a link kept with its target
    os.symlink("/nonexistent", str(r / "etc/dangling"))
    os.symlink("loop", str(r / "etc/loop"))
    os.symlink("../../../../../../etc/passwd", str(r / "etc/escape"))
    os.symlink("/etc", str(r / "hostetc"))  # /etc of the root, never the host's
    os.mkfifo(str(r / "etc/fifo"))
    os.mknod(str(r / "etc/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    deep = str(r / "deep")
    os.mkdir(deep)
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):  # deeper than Python's recursion limit
            os.mkdir("d", dir_fd=fd)
            new = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = new
        with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("x")
    finally:
        os.close(fd)
    return str(r)


def test_glob_star_star_on_a_hostile_tree(hostile_tree) -> None:
    root = hostile_tree()
    fs = RootFS(root)
    shallow = [p for p in glob_in_root(fs, "/**") if not p.startswith("/deep/")]
    assert shallow == ["/", "/deep", "/etc", "/etc/dangling", "/etc/escape", "/etc/fifo", "/etc/loop", "/etc/null",
                       "/etc/ssl", "/etc/ssl/certs", "/etc/ssl/certs/a.pem", "/hostetc", "/usr", "/usr/share",
                       "/usr/share/ca", "/usr/share/ca/a.crt"]


def test_keep_star_star_keeps_every_entry_inside_the_root_and_no_special_file(hostile_tree) -> None:
    from smith.elf.rootfs import kept_paths
    root = hostile_tree()
    fs = RootFS(root)
    kept = kept_paths(fs, glob_in_root(fs, "/**"))
    shallow = sorted(p for p in kept if not p.startswith("/deep/"))
    assert shallow == ["/deep", "/etc", "/etc/dangling", "/etc/escape", "/etc/loop", "/etc/ssl", "/etc/ssl/certs",
                       "/etc/ssl/certs/a.pem", "/hostetc", "/usr", "/usr/share", "/usr/share/ca",
                       "/usr/share/ca/a.crt"]
    assert all(os.path.lexists(root + p) for p in kept)


def test_keep_one_link_keeps_its_target(root: str) -> None:
    from smith.elf.rootfs import kept_paths
    fs = RootFS(root)
    assert kept_paths(fs, glob_in_root(fs, "/usr/lib64/*")) == {
        "/usr/lib64/libx.so.1", "/lib", "/usr/lib/x86_64-linux-gnu/libx.so.1"}
    assert kept_paths(fs, ["/opt/escape", "/opt/loop1"]) == {"/opt/escape", "/opt/loop1"}  # kept as links


def test_a_tree_deeper_than_path_max_is_a_clear_error(hostile_tree) -> None:
    from smith.elf.rootfs import kept_paths
    fs = RootFS(hostile_tree(depth=2100))  # /deep/d/d/...: longer than PATH_MAX (4096)
    with pytest.raises(SmithError, match=r"cannot (look up|list) /deep/d/d/.* in the root .*: File name too long"):
        kept_paths(fs, glob_in_root(fs, "/**"))
