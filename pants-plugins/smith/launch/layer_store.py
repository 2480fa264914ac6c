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
import tempfile
from typing import Iterator, List, Set, Tuple

from smith.oci.image_source import Layer, Store, verify_blob
from smith.safe_fs import remove_tree


def oci_apply_layer(source: Store, layer: Layer, dest: str) -> None:
    """Unpack one layer blob as an overlayfs lower dir with the project's one unpacker
    (smith.untar, OVERLAY mode: owners from the tar set with fchown on each new fd, `.wh.NAME`
    a 0/0 character device, `.wh..wh..opq` the trusted.overlay.opaque xattr), after checking
    the blob's digest (docker archives record no blob digest: there the diff_id check is the one)."""
    from smith import untar  # late: only needed when a layer is new
    what = "%s layer %s" % (source.path, layer.digest or layer.diff_id)
    if layer.digest is not None:
        verify_blob(source, layer.descriptor(), what)
    with source.open(layer.name) as raw:
        untar.apply_layer(raw, dest, what, layer.diff_id, untar.OVERLAY, owners=True)


@contextlib.contextmanager
def flocked(path: str, shared: bool = False) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
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
                    remove_tree(os.path.join(parent, name))
            tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
            try:
                os.chmod(tmp, 0o755)  # the layer root becomes `/` unless the tar says otherwise
                oci_apply_layer(source, layer, tmp)
                os.rename(tmp, final)
            except BaseException:
                remove_tree(tmp)
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
                remove_tree(trash)
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
