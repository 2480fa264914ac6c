"""Tree tars in and out of `smith closure`: safe unpack of a root, deterministic write of a closure."""
import io
import os
import shutil
import stat
import tarfile
import tempfile
from typing import Dict, List

from smith.errors import SmithError


def unpack_root_tar(tar_path: str, parent_dir: str) -> str:
    """Unpack an uncompressed tree tar into a new temp dir under `parent_dir`; returns that dir."""
    dest = os.path.realpath(tempfile.mkdtemp(prefix=".smith-closure-root-", dir=parent_dir))
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for m in tar:
                if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
                    continue  # devices and fifos are never part of a program's closure
                _check_member(tar_path, m, dest)
                # Symlink targets are kept as they are: absolute ones resolve inside the root later.
                if _HAS_FILTERS:
                    tar.extract(m, dest, numeric_owner=True, filter="tar")
                else:
                    tar.extract(m, dest, numeric_owner=True)
    except (tarfile.TarError, OSError) as e:
        remove_tree(dest)
        raise SmithError("cannot unpack tree tar %s: %s" % (tar_path, e))
    except BaseException:
        remove_tree(dest)
        raise
    return dest


# Extraction filters (PEP 706) exist from 3.9.17 on; older 3.9s get the same checks from us.
_HAS_FILTERS = hasattr(tarfile, "tar_filter")


def _check_member(tar_path: str, m: tarfile.TarInfo, dest: str) -> None:
    """Refuse names that could write outside `dest`: absolute, `..`, or through a symlinked dir."""
    if m.name.startswith("/") or ".." in m.name.split("/"):
        raise SmithError("tree tar %s holds the unsafe name %r; tree tars name files relative "
                         "to the root, without '..'" % (tar_path, m.name))
    if m.islnk() and (m.linkname.startswith("/") or ".." in m.linkname.split("/")):
        raise SmithError("tree tar %s: hard link %r points to the unsafe name %r" % (tar_path, m.name, m.linkname))
    parent = os.path.realpath(os.path.join(dest, os.path.dirname(m.name)))
    if parent != dest and not parent.startswith(dest + os.sep):
        raise SmithError("tree tar %s: %r would be written through a symlink out of the root"
                         % (tar_path, m.name))


def remove_tree(path: str) -> None:
    def onerror(func, p, exc):  # a read-only dir from the tar: make it writable and retry
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=onerror)


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
