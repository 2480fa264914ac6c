"""A file tree as a flat list of entries, read from directories on disk and from tree tars.

Entries carry where their bytes come from (a host file, or a byte range of a tar) so the layer
writer can stream content without copying trees around. Paths are image paths: relative,
"/"-separated, no leading "/", no "." or ".." parts; "" is the image root.
"""
import fnmatch
import hashlib
import os
import re
import stat
from typing import BinaryIO, Callable, Dict, Iterable, List, Optional, Tuple

from smith import untar
from smith.errors import SmithError
from smith.safe_fs import Unsafe, open_regular
from smith.untar import CountingReader, Limits, check_name

FILE, DIR, SYMLINK = "file", "dir", "symlink"


class Entry:
    """One tree entry. Hardlinked files share a `link_group`; the layer writer decides which
    path of a group holds the bytes (the first in sorted order). Content comes from a host
    file, a byte range of a tar, or `opener` (a callable returning a binary file object: bytes
    in memory, or a file opened fd-relative inside an untrusted root)."""

    __slots__ = ("path", "kind", "mode", "size", "target", "host", "tar", "offset",
                 "origin", "link_group", "opener")

    def __init__(self, path: str, kind: str, mode: int, origin: str, size: int = 0,
                 target: str = "", host: Optional[str] = None, tar: Optional[str] = None,
                 offset: int = 0, link_group: Optional[Tuple] = None,
                 opener: Optional[Callable[[], BinaryIO]] = None) -> None:
        self.path = path
        self.kind = kind
        self.mode = mode & 0o7777
        self.size = size
        self.target = target  # symlink target
        self.host = host  # content: a host file ...
        self.tar = tar  # ... or `size` bytes at `offset` in this tar file
        self.offset = offset
        self.origin = origin  # human-readable source, for error messages
        self.link_group = link_group
        self.opener = opener

    def open(self):
        """A binary file object positioned at this entry's content (caller closes it)."""
        if self.opener is not None:
            return self.opener()
        if self.host is not None:
            return open(self.host, "rb")
        f = open(self.tar, "rb")
        f.seek(self.offset)
        return f

    def content_digest(self) -> str:
        h = hashlib.sha256()
        with self.open() as f:
            left = self.size
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise SmithError("%s: %s is shorter than its recorded size; the file "
                                     "changed while building, rebuild" % (self.origin, self.path))
                h.update(chunk)
                left -= len(chunk)
        return h.hexdigest()

    def __repr__(self) -> str:
        return "Entry(%r, %s, %o)" % (self.path, self.kind, self.mode)


def clean_image_path(raw: str, what: str) -> str:
    """Normalise "/usr//bin/" or "./usr/bin" to "usr/bin"; refuse ".." parts."""
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SmithError("%s: path %r contains '..'; use a path inside the image" % (what, raw))
    return "/".join(parts)


def join(prefix: str, rel: str) -> str:
    return rel if not prefix else (prefix if not rel else prefix + "/" + rel)


def read_dir(host: str, prefix: str = "") -> List[Entry]:
    """Entries for `host` (a directory, or a single file) placed at image path `prefix`."""
    origin = "--dir /%s=%s" % (prefix, host)
    try:
        st = os.stat(host)  # the top level may be a symlink (e.g. a sandbox link); inside, never
    except OSError as e:
        raise SmithError("%s: cannot read %s (%s); check the path" % (origin, host, e.strerror))
    entries: List[Entry] = []
    if stat.S_ISDIR(st.st_mode):
        if prefix:
            entries.append(Entry(prefix, DIR, st.st_mode, origin))
        _walk(host, prefix, origin, entries)
    else:
        if not prefix:
            raise SmithError("%s: a single file cannot be the image root; give an image path "
                             "such as /etc/app.conf=%s" % (origin, host))
        entries.append(_host_entry(host, prefix, st, origin))
    return entries


def _walk(host_dir: str, prefix: str, origin: str, out: List[Entry]) -> None:
    try:
        with os.scandir(host_dir) as it:
            children = sorted(it, key=lambda d: d.name)
    except OSError as e:
        raise SmithError("%s: cannot list %s (%s)" % (origin, host_dir, e.strerror))
    for d in children:
        path = join(prefix, d.name)
        st = d.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            out.append(Entry(path, DIR, st.st_mode, origin))
            _walk(d.path, path, origin, out)
        else:
            out.append(_host_entry(d.path, path, st, origin))


def _host_entry(host: str, path: str, st: os.stat_result, origin: str) -> Entry:
    if stat.S_ISREG(st.st_mode):
        group = ("inode", st.st_dev, st.st_ino) if st.st_nlink > 1 else None
        return Entry(path, FILE, st.st_mode, origin, size=st.st_size, host=host, link_group=group)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, SYMLINK, 0o777, origin, target=os.readlink(host))
    raise SmithError("%s: %s is a device, fifo or socket; only files, directories and symlinks "
                     "can go into an image — exclude it" % (origin, host))


def read_tree_tar(tar_path: str, limits: Optional[Limits] = None) -> List[Entry]:
    """Entries of an uncompressed tree tar; content is read later straight from the tar.
    Headers come through smith.untar.members (bounded headers, entry cap); names are
    checked against the caps too."""
    origin = tar_path
    limits = limits or Limits.from_env()
    entries: Dict[str, Entry] = {}  # insertion-ordered; a later entry replaces an earlier one
    try:
        fd = open_regular(tar_path)
    except Unsafe as e:
        raise SmithError("%s: %s" % (tar_path, e))
    except OSError as e:
        raise SmithError("%s: cannot read it (%s); give a tree tar as written by `smith merge` "
                         "or `smith extract`" % (tar_path, e.strerror))
    with os.fdopen(fd, "rb") as f:
        for m, _ in untar.members(CountingReader(f, tar_path, limits), tar_path, limits):  # type: ignore[arg-type]
            check_name(m.name, origin, limits)
            path = clean_image_path(m.name, "%s: entry" % origin)
            if not path:
                continue  # the root itself
            if m.isreg() and not m.issparse():
                e = Entry(path, FILE, m.mode, origin, size=m.size, tar=tar_path,
                          offset=m.offset_data)
            elif m.isdir():
                e = Entry(path, DIR, m.mode, origin)
            elif m.issym():
                e = Entry(path, SYMLINK, 0o777, origin, target=m.linkname)
            elif m.islnk():
                check_name(m.linkname, origin, limits)
                target = entries.get(clean_image_path(m.linkname, "%s: hardlink" % origin))
                if target is None or target.kind != FILE:
                    raise SmithError("%s: hardlink %s points to %r, which is not a file earlier "
                                     "in the tar; rebuild the tar" % (origin, path, m.linkname))
                if target.link_group is None:
                    target.link_group = ("tar", tar_path, target.path)
                e = Entry(path, FILE, target.mode, origin, size=target.size, tar=tar_path,
                          offset=target.offset, link_group=target.link_group)
            else:
                raise SmithError("%s: %s is a device, fifo or sparse file; tree tars may hold "
                                 "only files, directories, symlinks and hardlinks" % (origin, path))
            entries.pop(path, None)  # a later entry replaces an earlier one, as `tar -x` does
            entries[path] = e
    return list(entries.values())


def _same(a: Entry, b: Entry) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == SYMLINK:
        return a.target == b.target
    return (a.mode == b.mode and a.size == b.size and a.opener is None and b.opener is None
            and (a.host, a.tar, a.offset) == (b.host, b.tar, b.offset)
            or a.mode == b.mode and a.size == b.size and a.content_digest() == b.content_digest())


def merge(sources: Iterable[List[Entry]]) -> List[Entry]:
    """Union of trees. Identical entries dedupe; directories always merge (their modes OR'ed);
    a path with different kind, mode, content or link target in two sources is an error
    naming both."""
    seen: Dict[str, Entry] = {}
    for entries in sources:
        for e in entries:
            old = seen.get(e.path)
            if old is None:
                seen[e.path] = e
            elif old.kind == DIR and e.kind == DIR:
                if old.mode != e.mode:  # order-independent: the union of the permissions
                    seen[e.path] = Entry(e.path, DIR, old.mode | e.mode, old.origin)
            elif not _same(old, e):
                raise SmithError(
                    "/%s differs between %s (%s, mode %o) and %s (%s, mode %o); keep one of "
                    "them, e.g. with --exclude /%s on the other"
                    % (e.path, old.origin, old.kind, old.mode, e.origin, e.kind, e.mode, e.path))
    return list(seen.values())


class Excluder:
    """fnmatch globs on the absolute image path ("/usr/share/doc", "*.pyc"); a glob that matches
    a directory drops everything under it."""

    def __init__(self, globs: Iterable[str]) -> None:
        pats = [g if g.startswith(("/", "*")) else "/" + g for g in globs]
        pats = [p.rstrip("/") or "/" for p in pats]
        self._re = re.compile("|".join(fnmatch.translate(p) for p in pats)) if pats else None
        self._cache: Dict[str, bool] = {}

    def excluded(self, path: str) -> bool:
        if self._re is None or not path:
            return False
        hit = self._cache.get(path)
        if hit is None:
            parent = path.rpartition("/")[0]
            hit = (bool(parent) and self.excluded(parent)) or bool(self._re.match("/" + path))
            self._cache[path] = hit
        return hit

    def filter(self, entries: Iterable[Entry]) -> List[Entry]:
        return [e for e in entries if not self.excluded(e.path)]
