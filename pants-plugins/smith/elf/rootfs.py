"""Paths inside a root directory, followed the way the kernel does inside a chroot.

Every symlink met on the way (including symlinked parent directories such as a merged-/usr
`/lib -> usr/lib`) is recorded, because the image must hold it for the path to work.
Absolute link targets are taken relative to the root; a link that climbs above the root is
refused (unless the root is `/`, where `..` at the top simply stays at `/`).
"""
import fnmatch
import glob
import os
import stat
from typing import Dict, List, Optional, Set, Tuple

from smith.errors import SmithError

MAX_SYMLINKS = 40  # Linux's limit (ELOOP)


class Resolved:
    """A path found inside the root: `path` has only real directories as parents."""

    __slots__ = ("path", "links", "st")

    def __init__(self, path: str, links: Tuple[str, ...], st: os.stat_result) -> None:
        self.path = path
        self.links = links
        self.st = st

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.st.st_mode)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


class RootFS:
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise SmithError("root directory %s does not exist; pass an unpacked tree as --root" % root)
        self.is_host = self.root == "/"
        self._cache: Dict[str, Optional[Resolved]] = {}

    def host(self, path: str) -> str:
        """The host path of a canonical path inside the root."""
        return path if self.is_host else self.root + path

    def resolve(self, path: str) -> Optional[Resolved]:
        """Follow `path` (absolute, inside the root); None when it does not exist."""
        if not path.startswith("/"):
            path = "/" + path  # relative names are taken from the container's cwd, `/`
        if path not in self._cache:
            self._cache[path] = self._resolve(path)
        return self._cache[path]

    def _resolve(self, path: str) -> Optional[Resolved]:
        todo = [c for c in reversed(path.split("/")) if c]
        cur = "/"
        links: List[str] = []
        last_link = None
        hops = 0
        st = os.lstat(self.host("/"))
        while todo:
            comp = todo.pop()
            if comp == ".":
                continue
            if comp == "..":
                if cur == "/":
                    if not self.is_host:
                        where = ("symlink %s -> %s" % last_link) if last_link else ("path %s" % path)
                        raise SmithError("%s climbs out of the root %s; make the link relative to "
                                         "the root or absolute inside it" % (where, self.root))
                    continue
                cur = os.path.dirname(cur)
                st = os.lstat(self.host(cur))
                continue
            cand = (cur if cur != "/" else "") + "/" + comp
            try:
                st = os.lstat(self.host(cand))
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise SmithError("too many levels of symlinks resolving %s in root %s" % (path, self.root))
                target = os.readlink(self.host(cand))
                links.append(cand)
                last_link = (cand, target)
                if target.startswith("/"):
                    cur = "/"
                todo.extend(c for c in reversed(target.split("/")) if c)
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                return None
            cur = cand
        return Resolved(cur, tuple(links), st)


def glob_in_root(fs: RootFS, pattern: str) -> List[str]:
    """Expand an absolute glob inside the root, following the root's symlinks inside the root.

    Like glob.glob: `*`, `?`, `[...]` match within one name, hidden names only match a pattern
    that starts with `.`, and `**` matches any number of directories (symlinked ones not entered).
    Returns paths inside the root (not canonicalised), sorted.
    """
    parts = [p for p in pattern.split("/") if p]
    found: Set[str] = set()
    _glob_step(fs, "/", parts, found)
    return sorted(found)


def _glob_step(fs: RootFS, base: str, parts: List[str], out: Set[str]) -> None:
    if not parts:
        if fs.resolve(base) is not None:
            out.add(base)
        return
    head, rest = parts[0], parts[1:]
    join = (lambda name: (base.rstrip("/") + "/" + name))
    if not glob.has_magic(head):
        _glob_step(fs, join(head), rest, out)
        return
    d = fs.resolve(base)
    if d is None or not d.is_dir:
        return
    names = sorted(os.listdir(fs.host(d.path)))
    if head == "**":
        _glob_step(fs, base, rest, out)  # zero directories
        for name in names:
            if name.startswith("."):
                continue
            sub = fs.resolve(join(name))
            if sub is not None and sub.is_dir and not sub.links[len(d.links):]:
                _glob_step(fs, join(name), parts, out)  # a real subdirectory: go deeper
            elif not rest:
                out.add(join(name))
        return
    for name in fnmatch.filter(names, head):
        if name.startswith(".") and not head.startswith("."):
            continue
        _glob_step(fs, join(name), rest, out)
