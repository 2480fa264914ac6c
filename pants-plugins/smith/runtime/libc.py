"""The few Linux syscalls the os module lacks (mount, unshare, setns, pivot_root, capset, prctl...).

Built on `_ctypes` directly instead of `ctypes`: importing ctypes costs ~2.5 ms (types, struct,
its module body) on every container start, `_ctypes` costs ~0.4 ms, and we only need plain C
calls taking ints and byte strings. Every call raises OSError with the real errno on failure.
"""

import _ctypes

from smith.linux import (  # noqa: F401 (the namespace flags, used as libc.CLONE_* by the runtime)
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME, CLONE_NEWUSER,
    CLONE_NEWUTS)
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


class _Lib:
    """What _ctypes.CFuncPtr needs from a library: its dlopen handle."""

    def __init__(self, name):
        self._handle = _ctypes.dlopen(name, _ctypes.RTLD_GLOBAL if hasattr(_ctypes, "RTLD_GLOBAL") else 0)


class _IntFn(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _PtrFn(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_void_p


_libc = _Lib(None)  # the process' own symbols: glibc is already loaded by python


class _PyApiFn(_ctypes.CFuncPtr):
    """Called with the GIL held (like os.fork calls fork())."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _PyVoidFn(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI
    _restype_ = None


def function(name, lib=_libc, returns_pointer=False):
    return (_PtrFn if returns_pointer else _IntFn)((name, lib))


def open_library(soname):
    return _Lib(soname)


def _checked(fn, what):
    def call(*args):
        ret = fn(*args)
        if ret < 0:
            err = _ctypes.get_errno()
            raise OSError(err, "%s: %s" % (what, os.strerror(err)))
        return ret
    return call



MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

SYS_PIVOT_ROOT = 155  # x86_64
SYS_CAPSET = 126

_unshare = _checked(function("unshare"), "unshare")
_setns = _checked(function("setns"), "setns")
_mount = _checked(function("mount"), "mount")
_umount2 = _checked(function("umount2"), "umount2")
_syscall = function("syscall")
_prctl = _checked(function("prctl"), "prctl")
_sethostname = _checked(function("sethostname"), "sethostname")

_setdomainname = _checked(function("setdomainname"), "setdomainname")


def _b(s):
    return s if s is None or isinstance(s, bytes) else os.fsencode(s)


def unshare(flags):
    _unshare(flags)


def setns(fd, nstype=0):
    _setns(fd, nstype)


def mount(source, target, fstype, flags, data=None):
    try:
        _mount(_b(source), _b(target), _b(fstype), c_ulong(flags), _b(data))
    except OSError as e:
        raise OSError(e.errno, "mount %s on %s (type %s, flags %#x, data %r): %s"
                      % (source, target, fstype, flags, data, os.strerror(e.errno)))


def umount2(target, flags=0):
    _umount2(_b(target), flags)


def pivot_root(new_root, put_old):
    if _syscall(c_ulong(SYS_PIVOT_ROOT), _b(new_root), _b(put_old)) < 0:
        err = _ctypes.get_errno()
        raise OSError(err, "pivot_root: %s" % os.strerror(err))


SYS_OPENAT2 = 437  # the same on every architecture (allocated after the tables were unified)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
OPENAT2_RETRIES = 256  # of an openat2 answered with EAGAIN, before giving up with it


def openat2(dirfd, path, flags, resolve):
    """openat2(2) with mode 0: raises OSError (ENOSYS on kernels before 5.6)."""
    how = flags.to_bytes(8, "little") + bytes(8) + resolve.to_bytes(8, "little")  # struct open_how
    for _ in range(OPENAT2_RETRIES):
        fd = _syscall(c_ulong(SYS_OPENAT2), c_int(dirfd), _b(path), how, c_ulong(len(how)))
        if fd >= 0:
            return fd
        err = _ctypes.get_errno()
        # EAGAIN: a rename or mount anywhere on the host raced a ".." step under RESOLVE_IN_ROOT;
        # the kernel asks the caller to try again (openat2(2)).
        if err != 11:
            break
    raise OSError(err, os.strerror(err), path)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _prctl(option, c_ulong(arg2), c_ulong(arg3), c_ulong(arg4), c_ulong(arg5))


def capset(effective, permitted, inheritable):
    """Set the three capability sets of this thread (64-bit masks) with capset(2) v3."""
    header = (0x20080522).to_bytes(4, "little") + bytes(4)  # _LINUX_CAPABILITY_VERSION_3, pid 0
    words = (effective, permitted, inheritable)
    data = b"".join((w & 0xFFFFFFFF).to_bytes(4, "little") for w in words) + \
        b"".join((w >> 32).to_bytes(4, "little") for w in words)
    if _syscall(c_ulong(SYS_CAPSET), header, data) < 0:
        err = _ctypes.get_errno()
        raise OSError(err, "capset: %s" % os.strerror(err))


def _buffer(size):
    """A zeroed, writable char[size] (ctypes.create_string_buffer), its type made on first use:
    the runtime process never needs one, only the container's init."""
    c_char = type("c_char", (_ctypes._SimpleCData,), {"_type_": "c"})
    return type("c_char_Array", (_ctypes.Array,), {"_type_": c_char, "_length_": size})()


def buffer_of(data: bytes):
    """A C copy of data (ctypes.create_string_buffer without importing ctypes)."""
    buf = _buffer(len(data))
    buf.raw = data
    return buf


def address_of(buf) -> int:
    return _ctypes.addressof(buf)


RLIM_INFINITY = (1 << 64) - 1


def setrlimit(resource, soft, hard):
    """setrlimit(2) through prlimit (the `resource` module is a shared library to load: ~0.4M
    instructions at every container start for two calls)."""
    new = (soft & RLIM_INFINITY).to_bytes(8, "little") + (hard & RLIM_INFINITY).to_bytes(8, "little")
    _checked(function("prlimit"), "prlimit")(0, resource, new, None)


def getrlimit(resource):
    """(soft, hard)"""
    old = _buffer(16)  # struct rlimit
    _checked(function("prlimit"), "prlimit")(0, resource, None, old)
    raw = old.raw
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


def loopback_up():
    """Set IFF_UP on `lo` (SIOCGIFFLAGS / SIOCSIFFLAGS on an AF_INET datagram socket), with
    plain C calls: `_socket`, `_struct` and `fcntl` are shared libraries to load (~1M
    instructions at every container start; `import socket` costs far more)."""
    ioctl = _checked(function("ioctl"), "ioctl")
    fd = _checked(function("socket"), "socket")(2, 2 | 0o2000000, 0)  # AF_INET, SOCK_DGRAM|SOCK_CLOEXEC
    try:
        ifr = _buffer(40)  # struct ifreq
        ifr.raw = b"lo"
        ioctl(fd, c_ulong(0x8913), ifr)  # SIOCGIFFLAGS
        raw = ifr.raw
        flags = int.from_bytes(raw[16:18], "little") | 0x1  # IFF_UP
        ifr.raw = raw[:16] + flags.to_bytes(2, "little") + raw[18:]
        ioctl(fd, c_ulong(0x8914), ifr)  # SIOCSIFFLAGS
    finally:
        os.close(fd)


def sethostname(name):
    b = _b(name)
    _sethostname(b, len(b))


def setdomainname(name):
    b = _b(name)
    _setdomainname(b, len(b))


CLONE_INTO_CGROUP = 0x200000000
SYS_CLONE3 = 435
_clone3 = _PyApiFn(("syscall", _libc))
try:  # what os.fork() does around fork(); an interpreter that hides them gets plain os.fork
    _before_fork = _PyVoidFn(("PyOS_BeforeFork", _libc))
    _after_fork_parent = _PyVoidFn(("PyOS_AfterFork_Parent", _libc))
    _after_fork_child = _PyVoidFn(("PyOS_AfterFork_Child", _libc))
except AttributeError:
    _before_fork = None


def fork_into_cgroup(cgroup_fd: int) -> int:
    """os.fork(), but the child starts in the cgroup v2 directory cgroup_fd (clone3 with
    CLONE_INTO_CGROUP): no migration afterwards, so no wait for the RCU grace period every
    cgroup.procs write costs. Returns -1 if the kernel refuses (then use os.fork)."""
    # struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal (SIGCHLD), stack,
    # stack_size, tls, set_tid, set_tid_size, cgroup
    if _before_fork is None:
        return -1
    fields = (CLONE_INTO_CGROUP, 0, 0, 0, 17, 0, 0, 0, 0, 0, cgroup_fd)
    args = b"".join(v.to_bytes(8, "little") for v in fields)
    _before_fork()
    pid = _clone3(c_ulong(SYS_CLONE3), args, c_ulong(len(args)))
    if pid == 0:
        _after_fork_child()
    else:
        _after_fork_parent()
    return pid if pid >= 0 else -1
