"""File-descriptor-relative file system work on untrusted trees (stdlib + smith.linux only).

A `Root` holds an fd of a directory; every path below it is resolved from that fd, never as a
string handed to the kernel from `/`: with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
RESOLVE_NO_MAGICLINKS) where the kernel has it (5.6+), else one O_NOFOLLOW|O_DIRECTORY openat
per component. A symlink anywhere on the way is refused (`Unsafe`), whatever its target, so a
tree planted by an archive cannot redirect a write. Removal is iterative (no recursion, whatever
the depth) and holds at most two directory fds: it goes back up through ".." and checks that it
arrived in the directory it came from (device and inode), so a directory moved away meanwhile
stops it instead of sending it elsewhere.
"""
import errno
import os
import stat
from typing import List, Optional, Sequence, Tuple

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# None: not tried yet; False: the kernel (or a seccomp filter) refuses openat2.
_openat2_works: Optional[bool] = None
# openat2 takes at most PATH_MAX bytes; deeper trees (with raised caps) are walked.
_OPENAT2_MAX = 4000


class Unsafe(Exception):
    """A path below a root goes through a symlink or a non-directory."""


def _openat2(dir_fd: int, rel: str) -> Optional[int]:
    """fd of directory `rel` below dir_fd via openat2; None when openat2 is unavailable."""
    global _openat2_works
    if _openat2_works is False or len(rel) > _OPENAT2_MAX:
        return None
    from smith import linux
    try:
        fd = linux.openat2(dir_fd, rel, DIR_FLAGS, linux.RESOLVE_BENEATH | linux.RESOLVE_NO_SYMLINKS
                           | linux.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        if e.errno in (errno.ENOSYS, errno.EPERM, errno.E2BIG, errno.EINVAL):
            _openat2_works = False
            return None
        raise
    _openat2_works = True
    return fd


def _fd_error(e: OSError, parts: Sequence[str], i: int) -> Exception:
    if e.errno in (errno.ELOOP, errno.ENOTDIR):
        return Unsafe("/%s is a symlink or not a directory; refusing to go through it"
                      % "/".join(parts[:i + 1]))
    return e


def walk_dirs(top_fd: int, parts: Sequence[str], create: bool = False,
              mode: int = 0o755) -> Optional[int]:
    """fd of directory top/parts, one O_NOFOLLOW component at a time (caller closes); missing
    directories are made (with exactly `mode`) if `create`, else None is returned."""
    fd = os.dup(top_fd)
    try:
        for i, p in enumerate(parts):
            try:
                nfd = os.open(p, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                try:
                    os.mkdir(p, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    nfd = os.open(p, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    raise _fd_error(e, parts, i)
                os.fchmod(nfd, mode)
            except OSError as e:
                raise _fd_error(e, parts, i)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


class Root:
    """A directory whose descendants are reached only through fds, never through a symlink."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.path = path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open_dir(self, parts: Sequence[str], create: bool = False) -> Optional[int]:
        """fd of directory root/parts (caller closes); None if missing and not `create`.
        Raises Unsafe when a component is a symlink or not a directory."""
        if not parts:
            return os.dup(self.fd)
        try:
            fd = _openat2(self.fd, "/".join(parts))
        except OSError as e:
            if e.errno == errno.ENOENT:
                return walk_dirs(self.fd, parts, create)
            if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EXDEV):
                return walk_dirs(self.fd, parts, create)  # finds which component, for the message
            raise
        if fd is None:
            return walk_dirs(self.fd, parts, create)
        return fd

    def open_file(self, parts: Sequence[str]) -> int:
        """fd (read-only) of the regular file root/parts; symlinks anywhere are refused."""
        pfd = self.open_dir(parts[:-1])
        if pfd is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", "/".join(parts))
        try:
            return open_regular_at(pfd, parts[-1], "/" + "/".join(parts))
        finally:
            os.close(pfd)


def open_regular_at(dir_fd: int, name: str, what: str) -> int:
    """Open `name` in dir_fd for reading: no symlink, nothing that blocks (O_NONBLOCK for a fifo
    planted in its place), and refuse anything but a regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Unsafe("%s is a symlink, not a regular file" % what)
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Unsafe("%s is not a regular file (mode %o)" % (what, st.st_mode))
    os.set_blocking(fd, True)
    return fd


def open_regular(path: str, what: Optional[str] = None) -> int:
    """open_regular_at for a path whose directory is trusted (e.g. a blob of a layout dir:
    the caller checked its name); the last component must be a regular file, not a link."""
    parent, name = os.path.split(path)
    pfd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return open_regular_at(pfd, name, what or path)
    finally:
        os.close(pfd)


def _make_writable(fd: int, st: Optional[os.stat_result] = None) -> None:
    st = st or os.fstat(fd)
    if st.st_mode & 0o700 != 0o700 and st.st_uid == os.geteuid():
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)


def _open_subdir(parent_fd: int, name: str) -> int:
    """Open a child directory for removal; one we cannot read (mode 0) is made readable first
    through an O_PATH fd (its /proc/self/fd link names exactly that inode)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        pfd = os.open(name, _PATH_FLAGS, dir_fd=parent_fd)
        try:
            os.chmod("/proc/self/fd/%d" % pfd, 0o700)
        finally:
            os.close(pfd)
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)


def remove_at(parent_fd: int, name: str) -> None:
    """Remove `name` in parent_fd, whatever it is (a directory with everything below it);
    missing is fine. Iterative; never follows a symlink."""
    try:
        os.unlink(name, dir_fd=parent_fd)
        return
    except FileNotFoundError:
        return
    except (IsADirectoryError, PermissionError):
        pass
    except OSError as e:
        if e.errno not in (errno.EISDIR, errno.EPERM):
            raise
    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent_fd)  # raises the real error
        return
    _make_writable(parent_fd)
    fd = _open_subdir(parent_fd, name)
    # Directories entered below `name`: (name in parent, (dev, ino) of that parent).
    path: List[Tuple[str, Tuple[int, int]]] = []
    pending: List[List[str]] = []  # subdirectories still to remove, per level
    try:
        while True:
            st = os.fstat(fd)
            _make_writable(fd, st)
            if len(pending) == len(path):  # first visit of this directory
                subdirs = []
                with os.scandir(fd) as it:
                    entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                for n, is_dir in entries:
                    if is_dir:
                        subdirs.append(n)
                    else:
                        try:
                            os.unlink(n, dir_fd=fd)
                        except FileNotFoundError:
                            pass
                pending.append(subdirs)
            if pending[-1]:
                sub = pending[-1].pop()
                try:
                    nfd = _open_subdir(fd, sub)
                except FileNotFoundError:
                    continue
                path.append((sub, (st.st_dev, st.st_ino)))
                os.close(fd)
                fd = nfd
                continue
            pending.pop()
            if not path:
                break
            sub, parent_id = path.pop()
            up = os.open("..", DIR_FLAGS, dir_fd=fd)
            ust = os.fstat(up)
            if (ust.st_dev, ust.st_ino) != parent_id:
                os.close(up)
                raise OSError(errno.ESTALE, "a directory was moved while it was being removed",
                              sub)
            os.close(fd)
            fd = up
            try:
                os.rmdir(sub, dir_fd=fd)
            except OSError as e:
                if e.errno != errno.ENOTEMPTY:  # something appeared meanwhile: go in again
                    raise
                pending[-1].append(sub)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


def remove_tree(path: str) -> None:
    """Remove `path` and everything below it (missing is fine), iteratively and fd-based."""
    parent, name = os.path.split(os.path.abspath(path))
    try:
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_at(pfd, name)
    finally:
        os.close(pfd)
