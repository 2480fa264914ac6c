"""Find an image in an OCI image layout: its config and its layers, bottom first.

Only the JSON documents are read here (index, manifest, config, each checked against its
digest); layer blobs are applied by smith.oci's unpacker through the layer store.
"""
import hashlib
import json
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from smith.errors import SmithError

REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


class Layer(NamedTuple):
    blob: str        # path of the (possibly compressed) blob
    media_type: str
    digest: str      # digest of the blob
    diff_id: str     # digest of the uncompressed tar: the store key


class Image(NamedTuple):
    layout: str
    config: Dict[str, Any]  # the image config's "config" object (Entrypoint, Cmd, Env, ...)
    layers: List[Layer]


def _blob_path(layout: str, digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise SmithError("%s: unsupported or malformed digest %r (expected sha256:<64 hex>)" % (layout, digest))
    return os.path.join(layout, "blobs", algo, hexpart)


def _read_json_blob(layout: str, digest: str, what: str) -> Dict[str, Any]:
    path = _blob_path(layout, digest)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SmithError("%s: the %s blob %s is missing from the layout" % (layout, what, digest))
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise SmithError("%s: the %s blob %s does not match its digest; rebuild or re-pull the image"
                         % (layout, what, digest))
    return json.loads(data)


def _pick(layout: str, manifests: List[Dict[str, Any]], tag: Optional[str]) -> Dict[str, Any]:
    if tag is not None:
        tagged = [m for m in manifests if m.get("annotations", {}).get(REF_NAME) == tag]
        if not tagged:
            names = sorted({m.get("annotations", {}).get(REF_NAME, "") for m in manifests} - {""})
            raise SmithError("%s: no image tagged %r in index.json (tags: %s); pass --layout DIR:TAG"
                             % (layout, tag, ", ".join(names) or "none"))
        return tagged[0]
    if len(manifests) != 1:
        raise SmithError("%s: index.json lists %d images; say which one with --layout DIR:TAG"
                         % (layout, len(manifests)))
    return manifests[0]


def _platform_manifest(layout: str, index: Dict[str, Any]) -> Dict[str, Any]:
    # A nested index (multi-platform image): the launcher runs linux/amd64 images.
    for m in index.get("manifests", []):
        p = m.get("platform", {})
        if p.get("os") == "linux" and p.get("architecture") == "amd64":
            return m
    raise SmithError("%s: the image index has no linux/amd64 manifest" % layout)


def open_image(layout: str, tag: Optional[str] = None) -> Image:
    """Read the image `tag` (or the only image) of the OCI layout directory `layout`."""
    index_path = os.path.join(layout, "index.json")
    if not os.path.isfile(index_path):
        raise SmithError("%s is not an OCI image layout (no index.json); pass the directory that "
                         "`pants package` wrote" % layout)
    with open(index_path) as f:
        index = json.load(f)
    desc = _pick(layout, index.get("manifests", []), tag)
    manifest = _read_json_blob(layout, desc["digest"], "manifest")
    while desc.get("mediaType") in INDEX_TYPES or manifest.get("mediaType") in INDEX_TYPES:
        desc = _platform_manifest(layout, manifest)
        manifest = _read_json_blob(layout, desc["digest"], "manifest")
    config = _read_json_blob(layout, manifest["config"]["digest"], "config")
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    blobs = manifest.get("layers", [])
    if len(diff_ids) != len(blobs):
        raise SmithError("%s: the manifest has %d layers but the config lists %d diff_ids"
                         % (layout, len(blobs), len(diff_ids)))
    layers = [Layer(_blob_path(layout, b["digest"]), b.get("mediaType", ""), b["digest"], d)
              for b, d in zip(blobs, diff_ids)]
    for layer in layers:
        _blob_path(layout, layer.diff_id)  # the diff_id names a store directory: check its form
    return Image(layout, config.get("config") or {}, layers)


def split_layout_ref(ref: str) -> Tuple[str, Optional[str]]:
    """`DIR[:TAG]` -> (DIR, TAG or None). A ':' inside an existing directory name stays in DIR."""
    if os.path.isdir(ref) or ":" not in ref:
        return ref, None
    path, _, tag = ref.rpartition(":")
    return path, tag or None
