"""The few Linux calls Python 3.9's os module lacks, through ctypes (x86_64 numbers).

open_tree(OPEN_TREE_CLONE) makes a detached copy of a mount that can be attached in another
mount namespace with move_mount; mount_setattr makes that copy read-only before it is seen.
"""
import ctypes
import os

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MNT_DETACH = 2

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return result


def open_tree_clone(path: str, recursive: bool = True) -> int:
    """A detached copy of the mount (tree) at path, as an fd; it is unmounted on close."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(path), flags),
                  "open_tree(%s)" % path)


def set_mount_attrs(tree_fd: int, attr_set: int, attr_clr: int = 0) -> None:
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, tree_fd, b"", AT_EMPTY_PATH | AT_RECURSIVE,
                         ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr")


def make_read_only(tree_fd: int) -> None:
    """Read-only, no setuid, no devices; executable even if the toolbox's own file system is
    mounted noexec (e.g. a /tmp)."""
    set_mount_attrs(tree_fd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    MOUNT_ATTR_NOEXEC)


def move_mount(tree_fd: int, target: str) -> None:
    _check(_libc.syscall(SYS_MOVE_MOUNT, tree_fd, b"", AT_FDCWD, os.fsencode(target),
                         MOVE_MOUNT_F_EMPTY_PATH), "move_mount(%s)" % target)


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def umount_detach(path: str) -> None:
    _check(_libc.umount2(os.fsencode(path), MNT_DETACH), "umount(%s)" % path)


def set_fs_ids(uid: int, gid: int) -> None:
    """setfsgid + setfsuid: create files as that user while keeping our other credentials
    (it returns the previous id, never an error)."""
    _libc.setfsgid(gid)
    _libc.setfsuid(uid)


MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    _check(_libc.mount(os.fsencode(source), os.fsencode(target), os.fsencode(fstype),
                       ctypes.c_ulong(flags), os.fsencode(data) if data else None),
           "mount %s on %s" % (fstype, target))


def make_private_mount_ns() -> None:
    """unshare(CLONE_NEWNS) and stop propagation both ways: nothing mounted after this is
    seen by the host."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _check(_libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None),
           "make / private")
