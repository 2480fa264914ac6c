"""Tree tars in and out of `smith closure`: safe unpack of a root, deterministic write of a closure."""
import io
import os
import stat
import tempfile
from typing import Dict, List, Optional

from smith import safe_fs, untar
from smith.errors import SmithError
from smith.untar import Limits


def unpack_root_tar(tar_path: str, parent_dir: str, limits: Optional[Limits] = None) -> str:
    """Unpack an (untrusted) uncompressed tree tar into a new temp dir under `parent_dir` with
    the one unpacker (smith.untar: fd-relative, never through a symlink; devices and fifos are
    skipped, absolute symlink targets are kept: they resolve inside the root later); returns
    that dir. On any failure the dir is removed and a SmithError names the tar and entry."""
    dest = os.path.realpath(tempfile.mkdtemp(prefix=".smith-closure-root-", dir=parent_dir))
    try:
        untar.extract_file(tar_path, dest, untar.NONE, limits=limits)
    except BaseException:
        remove_tree(dest)
        raise
    return dest


def remove_tree(path: str) -> None:
    """Remove a (possibly hostile, deep, partly read-only) tree: iteratively, fd-based."""
    safe_fs.remove_tree(path)


def _parents(path: str) -> List[str]:
    out = []
    d = os.path.dirname(path)
    while d not in ("/", ""):
        out.append(d)
        d = os.path.dirname(d)
    return out


def write_tree_tar(out_path: str, root: str, paths: List[str], generated: Dict[str, bytes]) -> None:
    """Write `paths` (entries inside `root`) and `generated` files as a deterministic tree tar
    with the one tree-tar writer (smith.oci.layer.write_tree_tar_file): sorted names, parent
    dirs included, mtime 0, uid/gid 0, no user/group names, modes kept. The root is read
    fd-relative (smith.safe_fs): a path that goes through a symlink inside the root is an
    error, never a read of a host file."""
    from smith.oci import layer, tree
    kinds: Dict[str, str] = {}  # path -> "root" | "generated" | "dir"
    for p in paths:
        kinds[p] = "root"
    for p in generated:
        kinds[p] = "generated"
    for p in list(kinds):
        for d in _parents(p):
            kinds.setdefault(d, "dir")
    origin = "the root %s" % root
    with safe_fs.Root(root) as fs:
        entries = []
        for p in sorted(kinds):
            rel = p.strip("/")
            parts = rel.split("/")
            if kinds[p] == "generated":
                data = generated[p]
                entries.append(tree.Entry(rel, tree.FILE, 0o644, "generated", size=len(data),
                                          opener=lambda data=data: io.BytesIO(data)))
                continue
            st = _lstat(fs, parts, p)
            if st is None and kinds[p] != "dir":
                raise SmithError("%s: %s is missing" % (origin, p))
            if kinds[p] == "dir" and (st is None or not stat.S_ISDIR(st.st_mode)):
                st = None  # a parent of generated files only, or e.g. a root whose /etc is a link
            if st is None or stat.S_ISDIR(st.st_mode):
                entries.append(tree.Entry(rel, tree.DIR, stat.S_IMODE(st.st_mode) if st else 0o755,
                                          origin))
            elif stat.S_ISLNK(st.st_mode):
                entries.append(tree.Entry(rel, tree.SYMLINK, 0o777, origin,
                                          target=_readlink(fs, parts)))
            elif stat.S_ISREG(st.st_mode):
                entries.append(tree.Entry(rel, tree.FILE, stat.S_IMODE(st.st_mode), origin,
                                          size=st.st_size,
                                          opener=lambda parts=parts: os.fdopen(fs.open_file(parts), "rb")))
            else:
                raise SmithError("%s in the root is neither a file, a dir nor a symlink" % p)
        try:
            layer.write_tree_tar_file(out_path, entries)
        except safe_fs.Unsafe as e:
            raise SmithError("%s: %s" % (origin, e))


def _lstat(fs: safe_fs.Root, parts: List[str], path: str) -> Optional[os.stat_result]:
    try:
        pfd = fs.open_dir(parts[:-1])
    except safe_fs.Unsafe as e:
        raise SmithError("%s lies below a symlink or a file of the root (%s)" % (path, e))
    if pfd is None:
        return None
    try:
        return os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(pfd)


def _readlink(fs: safe_fs.Root, parts: List[str]) -> str:
    pfd = fs.open_dir(parts[:-1])
    assert pfd is not None
    try:
        return os.readlink(parts[-1], dir_fd=pfd)
    finally:
        os.close(pfd)
