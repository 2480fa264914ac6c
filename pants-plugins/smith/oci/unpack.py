"""Unpack UNTRUSTED images and layers into a directory, never writing outside it.

Every path is walked from the root one component at a time with O_NOFOLLOW|O_DIRECTORY and
*at() calls (dir_fd), so a symlink planted by a layer can never redirect a write, whatever its
target. Refused, with a SmithError naming the layer and entry: absolute or ".." names, entries
below a symlink (or below a non-directory), hardlinks that point outside the root (absolute or
".."), whiteouts of "." or "..". Device nodes and fifos are skipped with a note on stderr.
Layer blobs are checked against their digest BEFORE they are applied, and their uncompressed
bytes against the diff_id while they are applied (the whole unpack goes to a temp directory
that replaces the output only when everything checked out).

Ownership is not reproduced (files belong to the unpacking user: the tree is input to later
steps, which set owners themselves); setuid/setgid/sticky bits are dropped; directories keep
their mode plus u+rwx so later layers can write into them.
"""
import errno
import gzip
import hashlib
import json
import os
import stat
import sys
import tarfile
import zlib
from typing import BinaryIO, Dict, List, Optional, Set

from smith import zstd
from smith.errors import SmithError
from smith.oci.atomic import atomic_dir, atomic_file
from smith.oci.docker_archive import decompressed
from smith.oci.image_source import Image, open_image, verify_blob

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
# What a corrupt or hostile compressed stream or tar raises while being read.
_STREAM_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) + zstd.ERRORS


class _Refused(Exception):
    """An entry the unpacker will not apply; turned into a SmithError with the layer name."""


class HashingReader:
    """Wraps a stream and hashes what is read through it (for diff_id checks)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        return data

    def drain(self) -> str:
        while self.read(_CHUNK):
            pass
        return "sha256:" + self.sha256.hexdigest()


def _rmtree_at(parent_fd: int, name: str) -> None:
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        with os.scandir(fd) as it:
            children = list(it)
        for c in children:
            if c.is_dir(follow_symlinks=False):
                _rmtree_at(fd, c.name)
            else:
                os.unlink(c.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


def _remove_at(parent_fd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        _rmtree_at(parent_fd, name)
    else:
        os.unlink(name, dir_fd=parent_fd)


def _parts(name: str, what: str) -> List[str]:
    if name.startswith("/"):
        raise _Refused("%s %r is an absolute path" % (what, name))
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refused("%s %r contains '..'" % (what, name))
    if any("\0" in p for p in parts):
        raise _Refused("%s %r contains a NUL byte" % (what, name))
    return parts


class SafeRoot:
    """A directory that entries are written into without ever following a symlink."""

    def __init__(self, root: str) -> None:
        self.fd = os.open(root, _DIR_FLAGS)

    def close(self) -> None:
        os.close(self.fd)

    def dir_fd(self, parts: List[str], create: bool) -> Optional[int]:
        """fd of the directory root/parts (caller closes); None if missing and not `create`."""
        fd = os.dup(self.fd)
        try:
            for i, p in enumerate(parts):
                try:
                    nfd = os.open(p, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    os.mkdir(p, 0o755, dir_fd=fd)
                    nfd = os.open(p, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _Refused("/%s is a symlink or not a directory; refusing to write "
                                       "through it" % "/".join(parts[:i + 1]))
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise


class LayerApplier:
    def __init__(self, root: str, whiteouts: bool = True) -> None:
        self.root = SafeRoot(root)
        self.whiteouts = whiteouts
        self.written: Set[str] = set()  # paths this layer wrote: opaque whiteouts keep them

    def close(self) -> None:
        self.root.close()

    def apply(self, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        parts = _parts(m.name, "entry")
        if not parts:
            return  # the root directory itself
        base = parts[-1]
        if self.whiteouts and base.startswith(WHITEOUT):
            self._whiteout(parts[:-1], base)
            return
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            print("smith unpack: note: skipping device/fifo /%s" % "/".join(parts),
                  file=sys.stderr)
            return
        pfd = self.root.dir_fd(parts[:-1], create=True)
        try:
            self._entry(pfd, base, m, tf)
        finally:
            os.close(pfd)
        path = "/".join(parts)
        self.written.add(path)
        for i in range(1, len(parts)):
            self.written.add("/".join(parts[:i]))

    def _entry(self, pfd: int, base: str, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        if m.isdir():
            try:
                st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    _remove_at(pfd, base)
                    os.mkdir(base, 0o700, dir_fd=pfd)
            except FileNotFoundError:
                os.mkdir(base, 0o700, dir_fd=pfd)
            dfd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            try:
                os.fchmod(dfd, (m.mode & 0o777) | 0o700)
            finally:
                os.close(dfd)
            return
        _remove_at(pfd, base)
        if m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
        elif m.islnk():
            tparts = _parts(m.linkname, "hardlink target")
            if not tparts:
                raise _Refused("hardlink to the root directory")
            tfd = self.root.dir_fd(tparts[:-1], create=False)
            if tfd is None:
                raise _Refused("hardlink target %r does not exist" % m.linkname)
            try:
                os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise _Refused("hardlink target %r does not exist" % m.linkname)
            except PermissionError:
                raise _Refused("hardlink target %r is a directory" % m.linkname)
            finally:
                os.close(tfd)
        else:
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                left = m.size
                while left:
                    data = src.read(min(left, _CHUNK)) if src is not None else b""
                    if not data:
                        raise _Refused("content is truncated")
                    _write_all(fd, data)
                    left -= len(data)
                os.fchmod(fd, m.mode & 0o777)
            finally:
                os.close(fd)

    def _whiteout(self, parent: List[str], base: str) -> None:
        pfd = self.root.dir_fd(parent, create=False)
        if pfd is None:
            return  # nothing below to hide
        try:
            if base == OPAQUE:
                self._clear(pfd, "/".join(parent))
                return
            name = base[len(WHITEOUT):]
            if name in ("", ".", "..") or "/" in name:
                raise _Refused("whiteout of %r" % name)
            _remove_at(pfd, name)
        finally:
            os.close(pfd)

    def _clear(self, dfd: int, path: str) -> None:
        """Opaque whiteout: drop what lower layers put in this directory, keep this layer's."""
        with os.scandir(dfd) as it:
            children = [(c.name, c.is_dir(follow_symlinks=False)) for c in it]
        for name, is_dir in children:
            child = path + "/" + name if path else name
            if child not in self.written:
                _remove_at(dfd, name)
            elif is_dir:
                cfd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
                try:
                    self._clear(cfd, child)
                finally:
                    os.close(cfd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def apply_tar_stream(stream: BinaryIO, dest: str, what: str, whiteouts: bool = True) -> None:
    """Apply an uncompressed tar stream to `dest` (which exists)."""
    applier = LayerApplier(dest, whiteouts)
    name = "?"
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for m in tf:
                name = m.name
                applier.apply(m, tf)
    except _Refused as e:
        raise SmithError("%s: entry %r refused: %s; the image is malicious or broken"
                         % (what, name, e))
    except _STREAM_ERRORS as e:
        raise SmithError("%s: not a readable tar (%s)" % (what, e))
    except OSError as e:
        raise SmithError("%s: entry %r could not be written (%s)" % (what, name, e))
    finally:
        applier.close()


def apply_layer(raw: BinaryIO, dest: str, what: str, diff_id: Optional[str] = None) -> str:
    """Apply one layer blob (gzip, zstd or plain tar; a seekable file object) into `dest`,
    handling whiteouts. Checks the uncompressed bytes against `diff_id` when given; returns
    the diff_id computed. The caller checks the blob digest first (see apply_layer_file)."""
    try:
        plain = decompressed(raw, what)
    except OSError as e:
        raise SmithError("%s: cannot read the layer (%s)" % (what, e))
    reader = HashingReader(plain)
    apply_tar_stream(reader, dest, what)  # type: ignore[arg-type]
    try:
        got = reader.drain()
    except _STREAM_ERRORS + (OSError,) as e:
        raise SmithError("%s: the compressed stream is corrupt (%s)" % (what, e))
    if diff_id is not None and got != diff_id:
        raise SmithError("%s: uncompressed content is %s but the image config says diff_id %s; "
                         "the image is corrupt or tampered with" % (what, got, diff_id))
    return got


def apply_layer_file(blob: str, dest: str, digest: Optional[str] = None,
                     diff_id: Optional[str] = None) -> str:
    """Apply the layer blob at path `blob` into `dest`, after checking its sha256 `digest`."""
    if digest is not None:
        h = hashlib.sha256()
        with open(blob, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        if "sha256:" + h.hexdigest() != digest:
            raise SmithError("layer %s: %s hashes to sha256:%s; refusing to apply it"
                             % (digest, blob, h.hexdigest()))
    with open(blob, "rb") as f:
        return apply_layer(f, dest, "layer %s" % (digest or blob), diff_id)


def unpack_tree_tar(tar_path: str, dest: str) -> None:
    """Read an (untrusted) tree tar into `dest` with the same path checks; no whiteouts."""
    os.makedirs(dest, exist_ok=True)
    try:
        with open(tar_path, "rb") as f:
            apply_tar_stream(f, dest, tar_path, whiteouts=False)
    except OSError as e:
        raise SmithError("%s: cannot read it (%s)" % (tar_path, e.strerror))


def apply_image(img: Image, dest: str) -> None:
    for lay in img.layers:
        what = "layer %s" % (lay.digest or lay.name)
        if lay.digest is not None:
            verify_blob(img.store, lay.descriptor(), what)
        with img.store.open(lay.name) as raw:
            apply_layer(raw, dest, what, lay.diff_id)


def _require_empty(path: str) -> None:
    if os.path.lexists(path) and (not os.path.isdir(path) or os.path.islink(path)
                                  or os.listdir(path)):
        raise SmithError("--output %s exists and is not an empty directory; remove it or pick "
                         "another path" % path)


def unpack_image(source: str, dest: str, config_out: Optional[str] = None) -> Dict:
    """Unpack SOURCE (OCI layout dir/tar, optionally PATH:TAG, or docker archive) into `dest`;
    returns the runtime config (Env, Entrypoint, Cmd, WorkingDir, ExposedPorts, Labels, User)."""
    _require_empty(dest)
    img = open_image(source)
    try:
        with atomic_dir(dest) as tmp:
            apply_image(img, tmp)
        runtime = img.runtime_config()
    finally:
        img.store.close()
    if config_out:
        with atomic_file(config_out) as f:
            f.write(json.dumps(runtime, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return runtime

