"""The few Linux calls the launcher needs that Python's os module lacks (through ctypes).

mount/umount2 for overlayfs, and the new mount API (open_tree, mount_setattr, move_mount) for
idmapped bind mounts. The syscall numbers of the new mount API are the same on every
architecture (they were allocated after the tables were unified), so no per-arch table.
"""
import ctypes
import errno
import os
import re
from typing import List, Optional

_libc = ctypes.CDLL(None, use_errno=True)

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x00100000

MS_RDONLY = 0x1
MNT_DETACH = 0x2
CLONE_NEWUSER = 0x10000000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return result


def mount(source: str, target: str, fstype: str, flags: int = 0, data: Optional[str] = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                       data.encode() if data is not None else None),
           "mount %s on %s" % (fstype, target))


def umount(target: str, detach: bool = False) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH if detach else 0), "umount %s" % target)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def idmapped_bind(source: str, target: str, userns_fd: int, readonly: bool = True) -> None:
    """Bind `source` on `target` with its ids shifted through `userns_fd`'s uid/gid maps.

    On-disk id k shows as the host id the namespace maps k to; a container in a namespace
    with the same maps therefore sees k again.
    """
    tree = _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, source.encode(),
                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), "open_tree %s" % source)
    try:
        attr = _MountAttr(attr_set=MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                          | (MOUNT_ATTR_RDONLY if readonly else 0), userns_fd=userns_fd)
        _check(_libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr),
                             ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr(IDMAP) %s" % source)
        _check(_libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(),
                             MOVE_MOUNT_F_EMPTY_PATH), "move_mount %s" % target)
    finally:
        os.close(tree)


def user_namespace(uid_base: int, gid_base: int, size: int) -> int:
    """Return an fd of a new user namespace mapping 0..size-1 to the given host ranges.

    A forked child unshares the namespace and waits while we write its maps and open
    /proc/CHILD/ns/user; the fd keeps the namespace alive after the child exits.
    """
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work, then _exit
        try:
            os.close(ready_r)
            os.close(done_w)
            ok = _libc.unshare(CLONE_NEWUSER) == 0
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
