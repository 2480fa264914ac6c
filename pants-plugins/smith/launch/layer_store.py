"""A shared store of unpacked layers, one directory per diff_id, each unpacked once.

STORE/layers/sha256/<hex> is a layer's tree as overlayfs wants a lower layer: the files of
that one layer, with OCI whiteouts turned into overlay whiteouts (a 0/0 character device for
`.wh.NAME`, the trusted.overlay.opaque xattr for `.wh..wh..opq`). Layer files keep the ids of
the tar (the image user, e.g. 10); containers see them through idmapped mounts (see rootfs.py).

Unpacking goes to a temporary directory and is renamed into place, under a per-layer flock:
of two processes wanting the same layer, one unpacks and the other waits, then reuses it.
"""
import contextlib
import fcntl
import os
import shutil
import stat
import tarfile
import tempfile
from typing import Iterator, List, Set, Tuple

from smith.errors import SmithError
from smith.oci.docker_archive import decompressed
from smith.oci.image_source import Layer, Store, verify_blob

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

def oci_apply_layer(source: Store, layer: Layer, dest: str) -> None:
    """Apply one layer blob with the project's safe unpacker, after checking its digest
    (docker archives record no blob digest: there the diff_id check is the one)."""
    from smith.oci.unpack import apply_layer  # late: only needed when a layer is new
    what = "%s layer %s" % (source.path, layer.digest or layer.diff_id)
    if layer.digest is not None:
        verify_blob(source, layer.descriptor(), what)
    with source.open(layer.name) as raw:
        apply_layer(raw, dest, what, layer.diff_id)


@contextlib.contextmanager
def flocked(path: str, shared: bool = False) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _members(source: Store, layer: Layer) -> Iterator[tarfile.TarInfo]:
    """The tar headers of a layer blob (gzip, zstd or plain), nothing extracted."""
    with source.open(layer.name) as raw:
        with tarfile.open(fileobj=decompressed(raw), mode="r|") as tar:
            yield from tar


def _parent_fd(root: str, parts: List[str], create: bool) -> int:
    """Open the parent directory of entry `parts` inside `root`, never following a symlink
    (the unpacker already refused unsafe names); missing directories are made if `create`."""
    if ".." in parts:
        raise SmithError("layer entry %r: refusing a path outside the layer" % "/".join(parts))
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def finish_for_overlay(root: str, source: Store, layer: Layer) -> None:
    """Second pass over one unpacked layer: owners as in the tar (the unpacker leaves files
    to the unpacking user), and OCI whiteouts as overlayfs whiteouts (a 0/0 character device
    for `.wh.NAME`, the trusted.overlay.opaque xattr for `.wh..wh..opq`; the unpacker, applying
    into an empty directory, had nothing to remove)."""
    for m in _members(source, layer):
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            continue  # devices and fifos were skipped by the unpacker
        parts = [p for p in m.name.split("/") if p not in ("", ".")]
        if not parts:  # the layer's root directory: it becomes `/` when on top
            os.chown(root, m.uid, m.gid)
            continue
        base = parts[-1]
        try:  # a whiteout's parent may exist only in lower layers: make it here
            fd = _parent_fd(root, parts, create=base.startswith(WHITEOUT))
        except FileNotFoundError:
            continue  # removed by a later entry of this layer
        try:
            if base == OPAQUE:
                os.setxattr(fd, "trusted.overlay.opaque", b"y")
            elif base.startswith(WHITEOUT):
                target = base[len(WHITEOUT):]
                if target in ("", ".", ".."):
                    raise SmithError("layer %s: whiteout entry %r hides %r; refusing it, the image "
                                     "is malicious or broken" % (layer.diff_id, m.name, target))
                try:
                    os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=fd)
                except FileExistsError:  # this layer also re-creates it: a dir must hide lower content
                    if stat.S_ISDIR(os.stat(target, dir_fd=fd, follow_symlinks=False).st_mode):
                        sub = os.open(target, _DIR_FLAGS, dir_fd=fd)
                        try:
                            os.setxattr(sub, "trusted.overlay.opaque", b"y")
                        finally:
                            os.close(sub)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(base, m.uid, m.gid, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)


class LayerStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.layers = os.path.join(root, "layers")

    def path(self, diff_id: str) -> str:
        algo, _, hexpart = diff_id.partition(":")
        return os.path.join(self.layers, algo, hexpart)

    def ensure(self, source: Store, layer: Layer) -> Tuple[str, bool]:
        """The store directory of `layer`, unpacking it first if needed; (path, unpacked_now)."""
        final = self.path(layer.diff_id)
        if os.path.isdir(final):
            return final, False
        parent = os.path.dirname(final)
        os.makedirs(parent, mode=0o700, exist_ok=True)
        with flocked(final + ".lock"):
            if os.path.isdir(final):  # another process unpacked it while we waited
                return final, False
            prefix = ".tmp-%s-" % os.path.basename(final)
            for name in os.listdir(parent):  # left by an unpacker that died holding this lock
                if name.startswith(prefix):
                    shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
            try:
                os.chmod(tmp, 0o755)  # the layer root becomes `/` unless the tar says otherwise
                oci_apply_layer(source, layer, tmp)
                finish_for_overlay(tmp, source, layer)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final, True

    @contextlib.contextmanager
    def in_use(self, exclusive: bool = False) -> Iterator[None]:
        """Launchers hold this shared from looking layers up until their container's id range
        lists them; prune holds it exclusively, so it never removes a layer about to be used."""
        os.makedirs(self.layers, mode=0o700, exist_ok=True)
        with flocked(os.path.join(self.layers, "in-use.lock"), shared=not exclusive):
            yield

    def prune(self, keep: Set[str]) -> List[Tuple[str, int]]:
        """Remove the layers whose diff_id is not in `keep` (call under in_use(exclusive=True));
        returns (diff_id, bytes) of each removed layer."""
        removed = []
        for algo in sorted(os.listdir(self.layers)) if os.path.isdir(self.layers) else []:
            adir = os.path.join(self.layers, algo)
            if algo == "mountpoints" or not os.path.isdir(adir):
                continue
            for name in sorted(os.listdir(adir)):
                diff_id = "%s:%s" % (algo, name)
                if name.startswith(".") or name.endswith(".lock") or diff_id in keep:
                    continue
                path = os.path.join(adir, name)
                size = sum(os.lstat(os.path.join(top, f)).st_blocks * 512
                           for top, _, files in os.walk(path) for f in files)
                trash = os.path.join(adir, ".tmp-%s-pruned" % name)
                os.rename(path, trash)  # gone from the store at once; then deleted
                shutil.rmtree(trash)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + ".lock")
                removed.append((diff_id, size))
        return removed

    def empty_dir(self) -> str:
        """An empty directory: overlayfs wants two lower dirs when there is no upper dir."""
        path = os.path.join(self.root, "empty")
        if not os.path.isdir(path):
            tmp = tempfile.mkdtemp(prefix=".tmp-empty-", dir=self.root)
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, path)
            except OSError:  # created meanwhile by another process
                os.rmdir(tmp)
        return path

    def mountpoints_dir(self, names: List[str]) -> str:
        """A layer holding just the empty directories `names`, to put on top of an image that
        lacks mount points a read-only root could not get otherwise."""
        names = sorted(names)
        path = os.path.join(self.layers, "mountpoints", "+".join(names))
        if not os.path.isdir(path):
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=".tmp-", dir=os.path.dirname(path))
            os.chmod(tmp, 0o755)
            for n in names:
                os.mkdir(os.path.join(tmp, n), 0o755)
            try:
                os.rename(tmp, path)
            except OSError:
                shutil.rmtree(tmp)
        return path
