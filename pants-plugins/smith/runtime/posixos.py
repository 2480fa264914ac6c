"""The part of `os` the runtime's start path uses, without importing `os`.

`import os` costs 4.4M instructions (13% of a `run` before the container's init is forked;
`_collections_abc`, which os imports for its environ mapping, is 2.7M of that), while every
function the runtime calls is os's own re-export of the built-in `posix` module. Modules on
the start path (main, run/create, container, spec, state, cgroups, channel, libc, init,
rootfs, inroot, identity) do `from smith.runtime import posixos as os`; the rest (hooks,
console, the other commands) import the real os, which holds the same functions.

`path` has the os.path functions the runtime uses, with posixpath's results for str paths
(posixos_test.py compares them), and realpath only for paths that exist.
"""
import posix as _posix
import sys
from posix import getcwd as _getcwd, mkdir as _mkdir, open as _open, readlink as _readlink, stat as _stat

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
sep = "/"
_ENC, _ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def __getattr__(name: str):
    """Everything else os would give: posix's functions and constants, and environ (a str
    snapshot: the runtime only reads its own environment). Looked up on first use and then
    kept here: copying all of posix up front (`from posix import *`) cost 0.24M instructions."""
    if name == "environ":
        value = {k.decode(_ENC, _ERRORS): v.decode(_ENC, _ERRORS) for k, v in _posix.environ.items()}
    else:
        value = getattr(_posix, name)
    globals()[name] = value
    return value


def getenv(key: str, default=None):
    """os.getenv, without making the whole environ mapping."""
    value = _posix.environ.get(fsencode(key))
    return default if value is None else fsdecode(value)


def read_text(path: str) -> str:
    """A small text file (e.g. in /proc or a cgroup) whole: open, read to the end, close; io's
    open().read() makes 8 syscalls and 5 times the instructions (32K) for the same."""
    fd = _open(path, _posix.O_RDONLY | _posix.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = _posix.read(fd, 65536)
            if not chunk:
                return b"".join(chunks).decode(_ENC, _ERRORS)
            chunks.append(chunk)
    finally:
        _posix.close(fd)


def fsencode(name) -> bytes:
    return name if isinstance(name, bytes) else name.encode(_ENC, _ERRORS)


def fsdecode(name) -> str:
    return name if isinstance(name, str) else name.decode(_ENC, _ERRORS)


def makedirs(name: str, mode: int = 0o777, exist_ok: bool = False) -> None:
    """os.makedirs for str paths: the missing parents first (mode 0o777 less the umask, as
    os.makedirs makes them), then name."""
    head = path.dirname(name.rstrip("/"))
    if head and head != name and not path.exists(head):
        try:
            makedirs(head, exist_ok=True)
        except FileExistsError:
            pass
    try:
        _mkdir(name, mode)
    except OSError:
        if not exist_ok or not path.isdir(name):
            raise


class path:
    """os.path's functions the runtime uses (str paths only)."""

    @staticmethod
    def join(a: str, *p: str) -> str:
        for b in p:
            if b.startswith("/"):
                a = b
            elif not a or a.endswith("/"):
                a += b
            else:
                a += "/" + b
        return a

    @staticmethod
    def dirname(p: str) -> str:
        head = p[:p.rfind("/") + 1]
        if head and head != "/" * len(head):
            head = head.rstrip("/")
        return head

    @staticmethod
    def basename(p: str) -> str:
        return p[p.rfind("/") + 1:]

    @staticmethod
    def normpath(p: str) -> str:
        if not p:
            return "."
        # POSIX keeps exactly two leading slashes (implementation-defined); three or more are one
        initial = 2 if p.startswith("//") and not p.startswith("///") else 1 if p.startswith("/") else 0
        parts = []
        for comp in p.split("/"):
            if comp in ("", "."):
                continue
            if comp != ".." or (not initial and not parts) or (parts and parts[-1] == ".."):
                parts.append(comp)
            elif parts:
                parts.pop()
        return "/" * initial + "/".join(parts) or "."

    @staticmethod
    def abspath(p: str) -> str:
        return path.normpath(p if p.startswith("/") else path.join(_getcwd(), p))

    @staticmethod
    def exists(p) -> bool:
        try:
            _stat(p)
        except (OSError, ValueError):
            return False
        return True

    @staticmethod
    def isdir(p) -> bool:
        try:
            return _stat(p).st_mode & 0o170000 == 0o040000
        except (OSError, ValueError):
            return False

    @staticmethod
    def isfile(p) -> bool:
        try:
            return _stat(p).st_mode & 0o170000 == 0o100000
        except (OSError, ValueError):
            return False

    @staticmethod
    def realpath(p: str) -> str:
        """The canonical path of an existing file, as the kernel resolved it (what
        /proc/self/fd/N names); OSError if it does not exist."""
        fd = _open(p, _posix.O_PATH | _posix.O_CLOEXEC)
        try:
            return _readlink("/proc/self/fd/%d" % fd)
        finally:
            _posix.close(fd)
