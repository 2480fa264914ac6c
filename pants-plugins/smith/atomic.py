"""Outputs appear whole or not at all: write under temporary names, rename at the end.

smith's one atomic writer: the CLIs' outputs, lockfiles, caches, and the runtime's state and pid
files. The runtime starts with `python3 -I -S` without even importing `os` (runtime/posixos.py), so
the file writer uses the built-in `posix` module and the builtin open() only (no tempfile, os,
contextlib); `os` is imported where the runtime never goes (parents=True, the directory writers).
A temp name is `urandom` + O_EXCL next to the output, as tempfile.mkstemp makes it.
"""
from posix import O_CLOEXEC, O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY
from posix import close as _close, fchmod as _fchmod, open as _open, replace as _replace
from posix import unlink as _unlink, urandom as _urandom

_TEMP_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC


def _temp_name(path: str) -> str:
    """A hidden unique name in the directory of `path` (relative or absolute)."""
    head, sep, base = path.rstrip("/").rpartition("/")
    return "%s%s.%s.%s" % (head, sep, base, _urandom(6).hex())


def _remove(path: str) -> None:
    try:
        _unlink(path)
    except FileNotFoundError:
        pass


class atomic_file:
    """`with atomic_file(path) as f:` an open file at a new temp name next to `path`, renamed to
    `path` when the block succeeds, removed when it fails.

    perms: the file's mode (default 0644); None keeps what open() would give (0666 less the umask,
    like runc's state and pid files). parents: create missing parent directories first."""

    def __init__(self, path: str, mode: str = "wb", perms=0o644, parents: bool = True, encoding=None):
        self.path, self.mode, self.perms, self.parents, self.encoding = path, mode, perms, parents, encoding

    def __enter__(self):
        if self.parents:
            import os
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        while True:
            self.tmp = _temp_name(self.path)
            try:
                fd = _open(self.tmp, _TEMP_FLAGS, 0o666 if self.perms is None else 0o600)
                break
            except FileExistsError:
                continue
        try:
            if self.perms is not None:
                _fchmod(fd, self.perms)
            self.file = open(fd, self.mode, encoding=self.encoding)
        except BaseException:
            _close(fd)
            _remove(self.tmp)
            raise
        return self.file

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self.file.close()
            if exc_type is None:
                _replace(self.tmp, self.path)
        finally:
            _remove(self.tmp)  # a no-op once renamed
        return False


def write_file(path: str, data, perms=0o644, parents: bool = True) -> None:
    """Write `data` (bytes, or text as UTF-8) to `path` through atomic_file."""
    with atomic_file(path, "wb", perms, parents) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


class atomic_dir_files:
    """`with atomic_dir_files(out_dir, names) as tmp:` {name: temp path} in `out_dir`; on success
    each is renamed to its name, on failure the temp files are removed."""

    def __init__(self, out_dir: str, names) -> None:
        self.out_dir, self.names = out_dir, list(names)

    def __enter__(self):
        import os
        os.makedirs(self.out_dir, exist_ok=True)
        self.tmp = {n: os.path.join(self.out_dir, ".%s.tmp-%d" % (n, os.getpid())) for n in self.names}
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        import os
        try:
            if exc_type is None:
                for n in self.names:
                    os.replace(self.tmp[n], os.path.join(self.out_dir, n))
        finally:
            for p in self.tmp.values():
                if os.path.exists(p):
                    os.unlink(p)
        return False


class atomic_dir:
    """`with atomic_dir(path) as tmp:` a fresh temp directory next to `path`, moved to `path` on
    success (replacing an old one), removed on failure."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> str:
        import os
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        while True:
            self.tmp = _temp_name(os.path.abspath(self.path))
            try:
                os.mkdir(self.tmp, 0o700)
                return self.tmp
            except FileExistsError:
                continue

    def __exit__(self, exc_type, exc, tb) -> bool:
        import os

        from smith.safe_fs import remove_tree  # iterative and fd-based: the tree may be hostile and deep
        try:
            if exc_type is None:
                os.chmod(self.tmp, 0o755)
                if os.path.lexists(self.path):
                    old = self.tmp + ".old"
                    os.rename(self.path, old)
                    os.rename(self.tmp, self.path)
                    remove_tree(old)
                else:
                    os.rename(self.tmp, self.path)
        finally:
            if os.path.lexists(self.tmp):
                remove_tree(self.tmp)
        return False
