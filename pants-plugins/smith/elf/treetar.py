"""Tree tars in and out of `smith closure`: safe unpack of a root, deterministic write of a closure."""
import io
import os
import stat
import tarfile
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
    """Write `paths` (entries inside `root`) and `generated` files as a deterministic tree tar:
    sorted names, parent dirs included, mtime 0, uid/gid 0, no user/group names, modes kept."""
    host = (lambda p: p) if os.path.realpath(root) == "/" else (lambda p: os.path.realpath(root) + p)
    entries: Dict[str, str] = {}  # path -> "root" | "generated"
    for p in paths:
        entries[p] = "root"
    for p in generated:
        entries[p] = "generated"
    for p in list(entries):
        for d in _parents(p):
            entries.setdefault(d, "dir")
    out_dir = os.path.dirname(os.path.abspath(out_path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(out_path), dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for p in sorted(entries):
                ti = tarfile.TarInfo(p.lstrip("/"))
                ti.mtime = 0
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                if entries[p] == "generated":
                    data = generated[p]
                    ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o644, len(data)
                    tar.addfile(ti, io.BytesIO(data))
                    continue
                try:
                    st = os.lstat(host(p))
                except FileNotFoundError:
                    if entries[p] != "dir":
                        raise
                    st = None  # parent of a generated file only
                if entries[p] == "dir" and (st is None or not stat.S_ISDIR(st.st_mode)):
                    st = None  # e.g. a root whose /etc is a link: the generated files need a real dir
                ti.mode = stat.S_IMODE(st.st_mode) if st else 0o755
                if st is None or stat.S_ISDIR(st.st_mode):
                    ti.type = tarfile.DIRTYPE
                    tar.addfile(ti)
                elif stat.S_ISLNK(st.st_mode):
                    ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, os.readlink(host(p)), 0o777
                    tar.addfile(ti)
                elif stat.S_ISREG(st.st_mode):
                    ti.type, ti.size = tarfile.REGTYPE, st.st_size
                    with open(host(p), "rb") as f:
                        tar.addfile(ti, f)
                else:
                    raise SmithError("%s in the root is neither a file, a dir nor a symlink" % p)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
