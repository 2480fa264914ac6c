"""The launcher's kernel plumbing on top of smith.linux: id-mapped bind mounts (new mount API),
a user namespace held by an fd, and the mounts below a directory."""
import errno
import os
import re
from typing import List

from smith import linux


def idmapped_bind(source: str, target: str, userns_fd: int, readonly: bool = True) -> None:
    """Bind `source` on `target` with its ids shifted through `userns_fd`'s uid/gid maps.

    On-disk id k shows as the host id the namespace maps k to; a container in a namespace
    with the same maps therefore sees k again.
    """
    tree = linux.open_tree_clone(source, recursive=False)
    try:
        linux.mount_setattr(tree, linux.MOUNT_ATTR_IDMAP | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV
                            | (linux.MOUNT_ATTR_RDONLY if readonly else 0), userns_fd=userns_fd,
                            recursive=False)
        linux.move_mount(tree, target)
    finally:
        os.close(tree)


def user_namespace(uid_base: int, gid_base: int, size: int) -> int:
    """Return an fd of a new user namespace mapping 0..size-1 to the given host ranges.

    A forked child unshares the namespace and waits while we write its maps and open
    /proc/CHILD/ns/user; the fd keeps the namespace alive after the child exits.
    """
    lib = linux.libc()  # loaded before the fork: the child only makes the call
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work, then _exit
        try:
            os.close(ready_r)
            os.close(done_w)
            ok = lib.unshare(linux.CLONE_NEWUSER) == 0
            os.write(ready_w, b"1" if ok else b"0")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(errno.EPERM, "unshare(CLONE_NEWUSER) failed: user namespaces are not available")
        with open("/proc/%d/uid_map" % pid, "w") as f:
            f.write("0 %d %d\n" % (uid_base, size))
        with open("/proc/%d/setgroups" % pid, "w") as f:
            f.write("deny")
        with open("/proc/%d/gid_map" % pid, "w") as f:
            f.write("0 %d %d\n" % (gid_base, size))
        return os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def mounts_under(path: str) -> List[str]:
    """Mount points at or below `path` (deepest first), from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)
