"""Linux calls Python 3.9's os module lacks, shared by crashcart and the launcher (stdlib only).

openat2 (path resolution confined below a directory fd, for the unpacker), the new mount API
(open_tree, mount_setattr, move_mount: detached copies of mounts that can be made read-only or
id-mapped before anyone sees them), mount/umount2/unshare/setns, and a process' start time
(to tell a pid from a reused one). ctypes is loaded on the first call, so importing this costs
nothing on a start path that only needs start_time (the runtime's; no typing either, for the
same reason). The syscall numbers of openat2 and the new mount API are the same on every
architecture (allocated after the tables were unified). The runtime keeps its own smaller bindings (runtime/libc.py) for start-up speed.
"""
import errno  # builtin: costs nothing on the start path
import posix  # not os: the runtime imports this on its start path, where os costs ~4M instructions
import sys

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
SYS_OPENAT2 = 437

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = posix.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x00100000

MS_RDONLY = 0x1
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

_loaded = {}


def libc():
    """The C library of this process (ctypes, errno kept), loaded once."""
    if "libc" not in _loaded:
        import ctypes
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        _loaded["libc"] = lib
    return _loaded["libc"]


def check(result: int, what: str) -> int:
    """Raise OSError with the real errno when a libc call returned < 0."""
    if result < 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, posix.strerror(err)))
    return result


def start_time(pid: int) -> "str | None":
    """Start time (clock ticks after boot) of a live, non-zombie process; None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _fsencode(s: str) -> bytes:  # os.fsencode
    return s if isinstance(s, bytes) else s.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def _path(s: "str | None") -> "bytes | None":
    return _fsencode(s) if s is not None else None


def mount(source: "str | None", target: str, fstype: "str | None", flags: int = 0,
          data: "str | None" = None) -> None:
    import ctypes
    check(libc().mount(_path(source), _path(target), _path(fstype), ctypes.c_ulong(flags), _path(data)),
          "mount %s on %s" % (fstype or source or "(flags %#x)" % flags, target))


def umount(target: str, detach: bool = False) -> None:
    check(libc().umount2(_fsencode(target), MNT_DETACH if detach else 0), "umount %s" % target)


def unshare(flags: int) -> None:
    check(libc().unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    check(libc().setns(fd, nstype), "setns")


def open_tree_clone(path: str, recursive: bool = True) -> int:
    """A detached copy of the mount (tree) at path, as an fd; it is unmounted on close."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return check(libc().syscall(SYS_OPEN_TREE, AT_FDCWD, _fsencode(path), flags),
                 "open_tree %s" % path)


def mount_setattr(tree_fd: int, attr_set: int, attr_clr: int = 0, userns_fd: int = 0,
                  recursive: bool = True) -> None:
    """Change the attributes of a detached tree (read-only, nosuid, id-mapped through userns_fd)."""
    import ctypes
    if "mount_attr" not in _loaded:
        class MountAttr(ctypes.Structure):  # struct mount_attr
            _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                        ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]
        _loaded["mount_attr"] = MountAttr
    attr = _loaded["mount_attr"](attr_set, attr_clr, 0, userns_fd)
    check(libc().syscall(SYS_MOUNT_SETATTR, tree_fd, b"", AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0),
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")


def move_mount(tree_fd: int, target: str) -> None:
    """Attach a detached tree at target."""
    check(libc().syscall(SYS_MOVE_MOUNT, tree_fd, b"", AT_FDCWD, _fsencode(target),
                         MOVE_MOUNT_F_EMPTY_PATH), "move_mount %s" % target)


MOVE_MOUNT_T_EMPTY_PATH = 0x40
UMOUNT_NOFOLLOW = 0x8


def move_mount_to_fd(tree_fd: int, target_fd: int, shown_as: str) -> None:
    """Attach a detached tree on the directory held by target_fd (an O_PATH fd opened without
    following symlinks): no path is resolved again, so nothing can be swapped in between."""
    check(libc().syscall(SYS_MOVE_MOUNT, tree_fd, b"", target_fd, b"",
                         MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH), "move_mount %s" % shown_as)


def umount_nofollow(target: str) -> None:
    """Lazily unmount target, never through a symlink in its last component."""
    check(libc().umount2(_fsencode(target), MNT_DETACH | UMOUNT_NOFOLLOW), "umount %s" % target)


# Retries of an openat2 that the kernel answered with EAGAIN before giving up with it.
OPENAT2_RETRIES = 256


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open `path` relative to `dir_fd` with RESOLVE_* restrictions (an fd).
    Raises OSError (ENOSYS on kernels before 5.6 or under a seccomp filter that lacks it)."""
    import ctypes
    if "open_how" not in _loaded:
        class OpenHow(ctypes.Structure):  # struct open_how
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                        ("resolve", ctypes.c_uint64)]
        _loaded["open_how"] = OpenHow
    how = _loaded["open_how"](flags, mode, resolve)
    for _ in range(OPENAT2_RETRIES):
        fd = libc().syscall(SYS_OPENAT2, ctypes.c_int(dir_fd), _fsencode(path), ctypes.byref(how),
                            ctypes.c_size_t(ctypes.sizeof(how)))
        # EAGAIN: a rename or mount anywhere on the host raced a ".." step under
        # RESOLVE_IN_ROOT/BENEATH; the kernel asks the caller to try again (openat2(2)).
        if fd >= 0 or ctypes.get_errno() != errno.EAGAIN:
            break
    return check(fd, "openat2 %s" % path)
