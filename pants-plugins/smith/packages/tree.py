"""Turn a package's entries into a deterministic, merged-/usr tree tar.

Merged /usr (Debian bookworm and Fedora/EL alike): whatever a package ships under /bin,
/sbin, /lib, /lib32, /lib64 or /libx32 is moved under usr/, and the tree of that package
also holds the top-level symlinks it needs (bin -> usr/bin, lib64 -> usr/lib64, ...), so
libc6's tree has usr/lib64/ld-linux-x86-64.so.2 and lib64 -> usr/lib64, and
/lib64/ld-linux-x86-64.so.2 resolves. Identical links in several trees merge cleanly.
A package's own top-level symlink (rpm's filesystem ships bin -> usr/bin) is replaced by
the same link. A relative symlink whose meaning the move would change is rewritten.

Tree tar: uncompressed, entries sorted by name, names without a leading "/", every parent
directory present (mode 0755 if the package does not ship it), mtime 0, uid/gid 0, no
user/group names, modes kept as shipped.
"""
import hashlib
import io
import os
import posixpath
from typing import Dict, Iterable, List

from smith.errors import SmithError
from smith.packages.entries import Entry
from smith.safe_fs import Unsafe, open_regular
from smith.untar import CountingReader, Limits, members

MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _usr(path: str) -> str:
    top = path.split("/", 1)[0]
    return "usr/" + path if top in MERGED else path


def _safe(path: str, what: str) -> str:
    norm = posixpath.normpath(path)
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm != path:
        raise SmithError("%s: unsafe or unnormalised path %r in the package" % (what, path))
    return norm


def merge_usr(entries: Iterable[Entry], what: str) -> List[Entry]:
    """Apply the merged-/usr move; returns entries sorted by path with parents present."""
    out: Dict[str, Entry] = {}
    shipped_as: Dict[str, str] = {}
    links = set()
    for e in entries:
        path = _safe(e.path, what)
        top = path.split("/", 1)[0]
        if top in MERGED:
            links.add(top)
            if path == top and e.kind == "symlink":
                continue            # the package's own bin -> usr/bin; ours replaces it
        new = _usr(path)
        e = Entry(new, e.kind, e.mode, e.data, e.target)
        if e.kind == "symlink" and not e.target.startswith("/") and new != path:
            # The link moved: keep it pointing at what it meant at its old place.
            meant = _usr(posixpath.normpath(posixpath.join(posixpath.dirname(path), e.target)))
            if posixpath.normpath(posixpath.join(posixpath.dirname(new), e.target)) != meant:
                e.target = posixpath.relpath(meant, posixpath.dirname(new))
        old = out.get(new)
        if old is not None and (old.kind, old.data, old.target) != (e.kind, e.data, e.target):
            if not (old.kind == e.kind == "dir"):
                raise SmithError("%s ships both /%s and /%s and they differ; merged /usr would put "
                                 "both at /%s" % (what, shipped_as[new], path, new))
        out[new] = e
        shipped_as[new] = path
    for top in sorted(links):
        out[top] = Entry(top, "symlink", 0o777, b"", "usr/" + top)
    for path in list(out):
        parent = posixpath.dirname(path)
        while parent and parent not in out:
            out[parent] = Entry(parent, "dir", 0o755)
            parent = posixpath.dirname(parent)
        if parent and out[parent].kind != "dir":
            raise SmithError("%s: /%s is inside /%s, which is not a directory" % (what, path, parent))
    return [out[p] for p in sorted(out)]


def write_tar(path: str, entries: List[Entry]) -> None:
    """Write ENTRIES as a deterministic tree tar at PATH, atomically, with the one tree-tar
    writer (smith.oci.layer.write_tree_tar_file; modes kept as shipped)."""
    from smith.oci import layer, tree as oci_tree
    kinds = {"dir": oci_tree.DIR, "symlink": oci_tree.SYMLINK, "file": oci_tree.FILE}
    out = []
    for e in entries:
        opener = (lambda data=e.data: io.BytesIO(data)) if e.kind == "file" else None
        out.append(oci_tree.Entry(e.path, kinds[e.kind], e.mode, "package tree %s" % path,
                                  size=len(e.data) if e.kind == "file" else 0, target=e.target,
                                  opener=opener))
    layer.write_tree_tar_file(path, out)


def check_overlaps(trees: Dict[str, str]) -> None:
    """Package trees that will share one root ({package: tree tar}) must agree on every path
    they both ship: the same kind, and for files the same content and mode (directories may
    differ in mode). Raises a SmithError naming both packages and the path otherwise."""
    seen: Dict[str, tuple] = {}
    limits = Limits.from_env()
    for package in sorted(trees):
        what = "the tree tar %s of package %s" % (trees[package], package)
        try:
            fd = open_regular(trees[package])
        except (OSError, Unsafe) as e:
            raise SmithError("cannot read %s: %s" % (what, getattr(e, "strerror", None) or e))
        with os.fdopen(fd, "rb") as f:
            for m, t in members(CountingReader(f, what, limits), what, limits):  # type: ignore[arg-type]
                if m.isdir():
                    key: tuple = ("dir",)
                elif m.issym():
                    key = ("symlink", m.linkname)
                else:
                    h = hashlib.sha256()
                    src = t.extractfile(m) if m.isreg() else None
                    for chunk in iter(lambda: src.read(1 << 20) if src else b"", b""):
                        h.update(chunk)
                    key = ("file", m.mode, h.hexdigest())
                first = seen.setdefault(m.name, (package, key))
                if first[1] != key:
                    raise SmithError("packages %s and %s both ship /%s and their copies differ; "
                                     "exclude one of them" % (first[0], package, m.name))
