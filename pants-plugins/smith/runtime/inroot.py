"""Paths inside a root directory, resolved through file descriptors (libpathrs' idea, small).

A bundle's rootfs is hostile: any component of a mount destination may be a symlink, and a
process that shares the rootfs may swap a directory for a symlink while the runtime works
(the CVE-2021-30465 class). So a path is never checked and then used as a string: it is
resolved to an O_PATH descriptor with every symlink (absolute ones too) and ".." confined
to the root as if it were "/", magic links (/proc/PID/root, /proc/self/fd/N) refused, and
what is missing is created with *at calls on the held descriptor of its parent. Callers
then act on the descriptor itself: mount onto `/proc/self/fd/N`, fchdir, mknodat.

openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) does the resolution in one call where the
kernel has it (5.6+); otherwise, and to create missing components, a component walk
opens one name at a time with O_PATH | O_NOFOLLOW and interprets symlinks itself.
"""
import _stat as stat  # the C module stat.py re-exports: importing stat.py costs ~0.3M instructions

from smith.runtime import libc
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)

O_PATH = os.O_PATH | os.O_CLOEXEC
_NOFOLLOW = O_PATH | os.O_NOFOLLOW
_MAX_LINKS = 40  # as the kernel (MAXSYMLINKS)
_MAX_STEPS = 4096
_kernel = [True]  # openat2 available (cleared on ENOSYS)


def fdpath(fd: int) -> str:
    """A path naming exactly what fd refers to, for calls that take no descriptor (mount)."""
    return "/proc/self/fd/%d" % fd


def _split(path: str) -> list:
    return [p for p in path.split("/") if p and p != "."]


def resolve(root_fd: int, path: str, make: str = None, follow: bool = True) -> int:
    """An O_PATH descriptor of path inside root_fd (the caller closes it).

    make: None (missing -> FileNotFoundError), "dir" (create missing directories, mode 0755
    minus the umask) or "file" (missing directories, then an empty regular file as the last
    component). follow=False: a symlink as the last component is returned as such (the
    caller sees S_ISLNK in fstat), never followed."""
    if not _split(path):
        return os.dup(root_fd)  # the root itself ("", "/", ".")
    if _kernel[0]:
        flags = O_PATH if follow else _NOFOLLOW
        for _ in range(8):  # EAGAIN: a rename raced with the lookup; the kernel asks to retry
            try:
                return libc.openat2(root_fd, path, flags, libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)
            except FileNotFoundError:
                if not make:
                    raise
                break
            except OSError as e:
                if e.errno in (38, 22, 7):  # ENOSYS, EINVAL, E2BIG: no (usable) openat2
                    _kernel[0] = False
                    break
                if e.errno != 11:
                    raise
    return _walk(root_fd, path, make, follow)


def _walk(root_fd: int, path: str, make, follow: bool) -> int:
    parts = _split(path)
    stack = []  # descriptors of the directories walked below root_fd
    links = steps = 0
    try:
        while parts:
            steps += 1
            if steps > _MAX_STEPS:
                raise OSError(40, "too many steps resolving the path", path)
            name = parts.pop(0)
            cur = stack[-1] if stack else root_fd
            if name == "..":  # confined: ".." of the root is the root
                if stack:
                    os.close(stack.pop())
                continue
            try:
                fd = os.open(name, _NOFOLLOW, dir_fd=cur)
            except FileNotFoundError:
                if not make:
                    raise
                _create(cur, name, "dir" if parts else make)
                parts.insert(0, name)  # open what is there now (ours, or a racer's: checked again)
                continue
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode) and (parts or follow):
                try:
                    target = os.readlink("", dir_fd=fd)  # this very link, not whatever has the name now
                finally:
                    os.close(fd)
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(40, os.strerror(40), path)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                parts[:0] = [p for p in target.split("/") if p and p != "."]
                continue
            if parts and not stat.S_ISDIR(mode):
                os.close(fd)
                raise OSError(20, os.strerror(20), path)
            stack.append(fd)
        return stack.pop() if stack else os.dup(root_fd)
    finally:
        for fd in stack:
            os.close(fd)


def _create(dir_fd: int, name: str, kind: str) -> None:
    try:
        if kind == "file":
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=dir_fd))
        else:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
    except FileExistsError:
        pass  # created meanwhile (or a dangling symlink): the walk opens and checks it


def entry(root_fd: int, path: str, make: str = None, follow: bool = True) -> tuple:
    """(parent, name, fd): path resolved as by resolve(), plus a descriptor of the directory
    that holds it and its name there, to reach what gets mounted on it later (a descriptor
    opened before a mount names what is under the mount). parent is None for the root."""
    parts = _split(path)
    for _ in range(_MAX_LINKS + 1):
        if not parts or parts[-1] == "..":
            return None, "", resolve(root_fd, "/".join(parts), make, follow)
        name = parts[-1]
        dir_fd = resolve(root_fd, "/".join(parts[:-1]), "dir" if make else None)
        keep = False
        try:
            for _ in range(8):
                try:
                    fd = os.open(name, _NOFOLLOW, dir_fd=dir_fd)
                    break
                except FileNotFoundError:
                    if not make:
                        raise
                    _create(dir_fd, name, make)
            else:
                raise OSError(2, os.strerror(2), path)
            if not follow or not stat.S_ISLNK(os.fstat(fd).st_mode):
                keep = True
                return dir_fd, name, fd
            try:
                target = os.readlink("", dir_fd=fd)
            finally:
                os.close(fd)
        finally:
            if not keep:
                os.close(dir_fd)
        # a symlink: go on with its target, relative to the directory that holds it
        parts = _split(target) if target.startswith("/") else parts[:-1] + _split(target)
    raise OSError(40, os.strerror(40), path)


def parent(root_fd: int, path: str, make: bool = False) -> tuple:
    """(O_PATH descriptor of the directory holding path's last component, that name), for
    calls that act on a name in a directory (mknodat, symlinkat, unlinkat). The last
    component is not resolved: acting on it never follows a symlink that sits there."""
    parts = _split(path)
    name = parts.pop() if parts else ""
    if name in ("", ".."):
        raise OSError(21, "%s does not name an entry in a directory" % path)
    return resolve(root_fd, "/".join(parts), "dir" if make else None), name


def is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)
