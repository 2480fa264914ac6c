"""Unpack UNTRUSTED images and layers into a directory, never writing outside it.

The tar work is smith.untar's (the one unpacker: fd-relative, no symlink ever followed, caps
on bytes, entries, path length and depth); this module is the image-level part. Layer blobs
are checked against their digest BEFORE they are applied, and their uncompressed bytes
against the diff_id while they are applied; all layers of an image share the per-image cap.
The whole unpack goes to a temp directory that replaces the output only when everything
checked out, and is removed (iteratively, fd-based) otherwise.

Ownership is not reproduced (files belong to the unpacking user: the tree is input to later
steps, which set owners themselves); setuid/setgid/sticky bits are dropped; directories keep
their mode plus u+rwx so later layers can write into them.
"""
import json
import os
from typing import BinaryIO, Dict, Optional

from smith import untar
from smith.errors import SmithError
from smith.atomic import atomic_dir, atomic_file
from smith.oci.image_source import Image, open_image, verify_blob
from smith.safe_fs import Unsafe, open_regular
from smith.untar import Budget, Limits

WHITEOUT = untar.WHITEOUT
OPAQUE = untar.OPAQUE
_STREAM_ERRORS = untar.STREAM_ERRORS


def apply_layer(raw: BinaryIO, dest: str, what: str, diff_id: Optional[str] = None,
                limits: Optional[Limits] = None, budget: Optional[Budget] = None) -> str:
    """Apply one layer blob (gzip, zstd or plain tar) into `dest`, handling whiteouts; see
    smith.untar.apply_layer. The caller checks the blob digest first (see apply_layer_file)."""
    return untar.apply_layer(raw, dest, what, diff_id, untar.APPLY, limits=limits, budget=budget)


def apply_layer_file(blob: str, dest: str, digest: Optional[str] = None,
                     diff_id: Optional[str] = None, limits: Optional[Limits] = None,
                     budget: Optional[Budget] = None) -> str:
    """Apply the layer blob at path `blob` (a regular file) into `dest`, after checking its
    sha256 `digest`."""
    try:
        fd = open_regular(blob)
    except Unsafe as e:
        raise SmithError("%s: %s; refusing to read it" % (blob, e))
    except OSError as e:
        raise SmithError("cannot read layer %s: %s" % (blob, e.strerror))
    with os.fdopen(fd, "rb") as f:
        if digest is not None:
            untar.digest_file(fd, digest, None, "layer %s" % blob)
            f.seek(0)
        return apply_layer(f, dest, "layer %s" % (digest or blob), diff_id, limits, budget)


def unpack_tree_tar(tar_path: str, dest: str, limits: Optional[Limits] = None) -> None:
    """Read an (untrusted) tree tar into `dest` with the same path checks; no whiteouts."""
    os.makedirs(dest, exist_ok=True)
    untar.extract_file(tar_path, dest, untar.NONE, limits=limits)


def apply_image(img: Image, dest: str, limits: Optional[Limits] = None) -> None:
    """Apply every layer of `img` into `dest`, each checked against its digest first, all of
    them together within the per-image cap."""
    limits = limits or Limits.from_env()
    budget = Budget(limits)
    for lay in img.layers:
        what = "layer %s" % (lay.digest or lay.name)
        if lay.digest is not None:
            verify_blob(img.store, lay.descriptor(), what)
        with img.store.open(lay.name) as raw:
            apply_layer(raw, dest, what, lay.diff_id, limits, budget)


def _require_empty(path: str) -> None:
    if os.path.lexists(path) and (not os.path.isdir(path) or os.path.islink(path)
                                  or os.listdir(path)):
        raise SmithError("--output %s exists and is not an empty directory; remove it or pick "
                         "another path" % path)


def unpack_image(source: str, dest: str, config_out: Optional[str] = None,
                 limits: Optional[Limits] = None) -> Dict:
    """Unpack SOURCE (OCI layout dir/tar, optionally PATH:TAG, or docker archive) into `dest`;
    returns the runtime config (Env, Entrypoint, Cmd, WorkingDir, ExposedPorts, Labels, User)."""
    _require_empty(dest)
    img = open_image(source)
    try:
        with atomic_dir(dest) as tmp:
            apply_image(img, tmp, limits)
        runtime = img.runtime_config()
    finally:
        img.store.close()
    if config_out:
        with atomic_file(config_out) as f:
            f.write(json.dumps(runtime, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return runtime

