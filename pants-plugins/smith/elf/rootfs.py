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
from typing import Dict, List, Optional, Sequence, Set, Tuple

from smith.errors import SmithError

MAX_SYMLINKS = 40  # Linux's limit (ELOOP)


class Unresolvable(SmithError):
    """A path whose symlinks loop or climb out of the root (the kernel gives ELOOP or stays at /)."""


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
        comps = [c for c in path.split("/") if c]
        cur = "/"
        links: List[str] = []
        last_link = None
        hops = 0
        # Walking a tree asks for the children of a directory just resolved: start from that parent
        # (its canonical path and links) instead of from the top, so a deep tree costs O(depth), not
        # O(depth^2) lookups of ever longer host paths.
        parent = self._cache.get("/" + "/".join(comps[:-1])) if len(comps) > 1 else None
        if parent is not None and parent.is_dir:
            cur, links, st = parent.path, list(parent.links), parent.st
            hops = len(links)  # every hop records a link: the kernel's 40 count for the whole path
            comps = comps[-1:]
        else:
            st = os.lstat(self.host("/"))
        todo = list(reversed(comps))
        while todo:
            comp = todo.pop()
            if comp == ".":
                continue
            if comp == "..":
                if cur == "/":
                    if not self.is_host:
                        where = ("symlink %s -> %s" % last_link) if last_link else ("path %s" % path)
                        raise Unresolvable("%s climbs out of the root %s; make the link relative to "
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
            except OSError as e:  # ENAMETOOLONG, EACCES, ...: a clear error, not a traceback
                raise SmithError("cannot look up %s in the root %s: %s" % (cand, self.root, e.strerror or e)) from None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise Unresolvable("too many levels of symlinks resolving %s in root %s" % (path, self.root))
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


def matches_or_under(path: str, globs: Sequence[str]) -> bool:
    """The image path or one of its parent directories matches one of `globs` (fnmatch, case
    sensitive): how `excludes` and `python_sourceless` name whole subtrees."""
    p = path
    while p not in ("/", ""):
        if any(fnmatch.fnmatchcase(p, g) for g in globs):
            return True
        p = os.path.dirname(p)
    return False


def glob_in_root(fs: RootFS, pattern: str) -> List[str]:
    """Expand an absolute glob inside the root, following the root's symlinks inside the root.

    Like glob.glob: `*`, `?`, `[...]` match within one name, hidden names only match a pattern
    that starts with `.`, and `**` matches any number of directories (symlinked ones not entered).
    A symlink that does not resolve inside the root (dangling, looping, or climbing out) matches as
    the link itself, as glob.glob returns broken links; nothing outside the root is ever looked at.
    Iterative: any depth of tree. Returns paths inside the root (not canonicalised), sorted.
    """
    parts = [p for p in pattern.split("/") if p]
    found: Set[str] = set()
    todo: List[Tuple[str, int]] = [("/", 0)]
    seen: Set[Tuple[str, int]] = set()
    while todo:
        base, i = todo.pop()
        if (base, i) in seen:
            continue
        seen.add((base, i))
        if i == len(parts):
            if _lexists(fs, base):
                found.add(base)
            continue
        head = parts[i]
        join = (lambda name: (base.rstrip("/") + "/" + name))
        if not glob.has_magic(head):
            todo.append((join(head), i + 1))
            continue
        d = _try_resolve(fs, base)
        if d is None or not d.is_dir:
            continue
        names = _listdir(fs, d.path)
        if head == "**":
            todo.append((base, i + 1))  # zero directories
            for name in names:
                if name.startswith("."):
                    continue
                sub = _try_resolve(fs, join(name))
                if sub is not None and sub.is_dir and not sub.links[len(d.links):]:
                    todo.append((join(name), i))  # a real subdirectory: go deeper
                elif i + 1 == len(parts):
                    found.add(join(name))
            continue
        for name in fnmatch.filter(names, head):
            if name.startswith(".") and not head.startswith("."):
                continue
            todo.append((join(name), i + 1))
    return sorted(found)


def _try_resolve(fs: RootFS, path: str) -> Optional[Resolved]:
    """fs.resolve, with a link that loops or climbs out of the root taken as unresolvable."""
    try:
        return fs.resolve(path)
    except Unresolvable:
        return None


def link_in_root(fs: RootFS, path: str) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """A symlink that does not resolve (dangling, looping, climbing out): its canonical path and the
    links on the way to its directory; None when `path` names no symlink inside the root."""
    parent, name = os.path.split(path.rstrip("/"))
    d = _try_resolve(fs, parent or "/")
    if d is None or not d.is_dir or name in ("", ".", ".."):
        return None
    p = d.path.rstrip("/") + "/" + name
    try:
        st = os.lstat(fs.host(p))
    except OSError:
        return None
    return (p, d.links) if stat.S_ISLNK(st.st_mode) else None


def _lexists(fs: RootFS, path: str) -> bool:
    return _try_resolve(fs, path) is not None or link_in_root(fs, path) is not None


def _listdir(fs: RootFS, path: str) -> List[str]:
    try:
        return sorted(os.listdir(fs.host(path)))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise SmithError("cannot list %s in the root %s: %s" % (path, fs.root, e.strerror or e)) from None


def _is_kept_kind(mode: int) -> bool:
    """Directories, regular files and symlinks; device nodes, fifos and sockets are never kept (the
    runtime provides /dev, and an image layer has no business holding them)."""
    return stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def walk_in_root(fs: RootFS, top: str) -> List[str]:
    """Every directory, regular file and symlink below the real directory `top` of the root (paths
    inside the root, sorted). Symlinks are listed, never entered; special files are skipped.
    Iterative (no recursion limit) and by lstat only, so nothing outside the root is looked at."""
    out: List[str] = []
    stack = [top.rstrip("/")]
    while stack:
        d = stack.pop()
        for name in _listdir(fs, d or "/"):
            p = d + "/" + name
            try:
                mode = os.lstat(fs.host(p)).st_mode
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                raise SmithError("cannot look up %s in the root %s: %s" % (p, fs.root, e.strerror or e)) from None
            if not _is_kept_kind(mode):
                continue
            out.append(p)
            if stat.S_ISDIR(mode):
                stack.append(p)
    return sorted(out)


def kept_paths(fs: RootFS, matches: List[str]) -> Set[str]:
    """What the matches of a keep glob (`smith closure --keep`, `smith minimize --path`) put in the tree:
    each match and the links on its way; a matched directory whole (its dirs, files and symlinks); a
    symlink with its target when that is a file inside the root (a symlinked directory is kept as the
    link). A link that resolves nowhere inside the root is kept as the link. Device nodes, fifos and
    sockets are never kept."""
    out: Set[str] = set()
    walked: Set[str] = set()  # `/**` matches every directory: walk each subtree once
    for m in matches:
        found = _keep_one(fs, m, out)
        if found is not None and found.is_dir and found.path not in walked:
            out.add(found.path)
            walked.add(found.path)
            for p in walk_in_root(fs, found.path):
                sub = _keep_one(fs, p, out)
                if sub is not None and sub.is_dir and sub.path == p:
                    out.add(p)  # a real directory below (a symlinked one is kept as the link only)
                    walked.add(p)
    out.discard("/")  # the root itself is no entry of a tree
    return out


def _keep_one(fs: RootFS, path: str, out: Set[str]) -> Optional[Resolved]:
    found = _try_resolve(fs, path)
    if found is None:
        link = link_in_root(fs, path)
        if link is not None:
            out.update(link[1])
            out.add(link[0])
        return None
    if not _is_kept_kind(found.st.st_mode):
        return None
    out.update(found.links)
    if not found.is_dir:
        out.add(found.path)
    return found
