"""Read an image from an OCI layout (directory or tar) or a docker-archive tar. Input is
untrusted: every blob read is checked against its descriptor's digest and size, and JSON
blobs are size-limited.

The result is an `Image`: its config and its layers in order, each with the digest to verify
and the diff_id that its uncompressed tar must hash to.
"""
import hashlib
import json
import os
import tarfile
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

from smith.errors import SmithError
from smith.safe_fs import Root, Unsafe

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
REF_NAME = "org.opencontainers.image.ref.name"
MAX_JSON = 4 << 20
_CHUNK = 1 << 20


class Store:
    """Files of an image source by relative name: a directory or a tar."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tar: Optional[tarfile.TarFile] = None
        self._members: Dict[str, tarfile.TarInfo] = {}
        if not os.path.isdir(path):
            try:
                self._tar = tarfile.open(path, "r:*")
            except (OSError, tarfile.TarError) as e:
                raise SmithError("%s: neither an OCI layout directory nor a readable tar (%s)"
                                 % (path, e))
            for m in self._tar.getmembers():
                if m.isreg():
                    self._members[_norm(m.name)] = m

    def exists(self, name: str) -> bool:
        if self._tar is None:
            return os.path.isfile(self._dir_path(name))
        return _norm(name) in self._members

    def open(self, name: str) -> BinaryIO:
        if self._tar is None:
            self._dir_path(name)  # refuses "", "." and ".." parts
            try:  # no symlink on the way, and a regular file (a fifo or /dev/zero never ends)
                with Root(self.path) as root:
                    return os.fdopen(root.open_file(_norm(name).split("/")), "rb")
            except Unsafe as e:
                raise SmithError("%s: %s; refusing to read it" % (self.path, e))
            except OSError as e:
                raise SmithError("%s: cannot read %s (%s); the image is incomplete"
                                 % (self.path, name, e.strerror))
        m = self._members.get(_norm(name))
        if m is None:
            raise SmithError("%s: %s is missing from the archive; the image is incomplete"
                             % (self.path, name))
        return self._tar.extractfile(m)  # type: ignore[return-value]

    def _dir_path(self, name: str) -> str:
        parts = _norm(name).split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise SmithError("%s: refusing file name %r outside the layout" % (self.path, name))
        return os.path.join(self.path, *parts)

    def read_json(self, name: str) -> Any:
        with self.open(name) as f:
            data = f.read(MAX_JSON + 1)
        return _parse_json(data, "%s: %s" % (self.path, name))

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _parse_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_JSON:
        raise SmithError("%s is larger than %d bytes; not an image metadata file" % (what, MAX_JSON))
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SmithError("%s is not valid JSON (%s)" % (what, e))


def blob_name(digest: str, what: str) -> str:
    algo, _, hexpart = str(digest).partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise SmithError("%s: unsupported or malformed digest %r (only sha256 is supported)"
                         % (what, digest))
    return "blobs/sha256/" + hexpart


def verify_blob(store: Store, desc: Dict[str, Any], what: str) -> None:
    """Hash a blob fully and compare with its descriptor, before anything uses it."""
    digest = desc.get("digest")
    name = blob_name(digest, what)
    h = hashlib.sha256()
    size = 0
    limit = desc.get("size") if isinstance(desc.get("size"), int) and desc["size"] >= 0 else None
    with store.open(name) as f:
        while True:  # stop at size + 1 bytes: a blob longer than its descriptor is never read out
            chunk = f.read(_CHUNK if limit is None else min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    if limit is not None and size > limit:
        raise SmithError("%s: blob %s is more than the %d bytes its descriptor says"
                         % (what, digest, limit))
    if "sha256:" + h.hexdigest() != digest:
        raise SmithError("%s: blob %s has digest sha256:%s — its content does not match its "
                         "name; the image is corrupt or tampered with" % (what, digest, h.hexdigest()))
    if "size" in desc and desc["size"] != size:
        raise SmithError("%s: blob %s is %d bytes, its descriptor says %s" % (what, digest, size,
                                                                            desc["size"]))


def read_json_blob(store: Store, desc: Dict[str, Any], what: str) -> Any:
    digest = desc.get("digest")
    if not isinstance(desc.get("size", 0), int) or desc.get("size", 0) > MAX_JSON:
        raise SmithError("%s: %s is too large for image metadata" % (what, digest))
    with store.open(blob_name(digest, what)) as f:
        data = f.read(MAX_JSON + 1)
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != digest:
        raise SmithError("%s: blob %s has digest %s — its content does not match its name; the "
                         "image is corrupt or tampered with" % (what, digest, got))
    if "size" in desc and desc["size"] != len(data):
        raise SmithError("%s: blob %s is %d bytes, its descriptor says %s"
                         % (what, digest, len(data), desc["size"]))
    return _parse_json(data, "%s: %s" % (what, digest))


class Layer:
    def __init__(self, name: str, digest: Optional[str], diff_id: str, media_type: str,
                 size: Optional[int]) -> None:
        self.name = name  # file name in the store
        self.digest = digest  # None for docker-archive layers (only diff_ids are recorded)
        self.diff_id = diff_id
        self.media_type = media_type
        self.size = size

    def descriptor(self) -> Dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class Image:
    def __init__(self, store: Store, config: Dict[str, Any], layers: List[Layer],
                 manifest: Optional[Dict[str, Any]]) -> None:
        self.store = store
        self.config = config
        self.layers = layers
        self.manifest = manifest

    def runtime_config(self) -> Dict[str, Any]:
        """The parts of the image config a runtime needs; absent fields are null ([] for Env)."""
        c = self.config.get("config") or {}
        out = {k: c.get(k) for k in ("Entrypoint", "Cmd", "WorkingDir", "ExposedPorts",
                                     "Labels", "User")}
        out["Env"] = c.get("Env") or []
        return out


def split_ref(source: str) -> Tuple[str, Optional[str]]:
    """"layout:tag" -> ("layout", "tag"), unless the whole string is an existing path."""
    if os.path.exists(source):
        return source, None
    path, sep, ref = source.rpartition(":")
    if sep and path and os.path.exists(path):
        return path, ref
    raise SmithError("%s does not exist; give an OCI layout directory or tar, or a docker "
                     "archive (optionally PATH:TAG)" % source)


def open_image(source: str, ref: Optional[str] = None) -> Image:
    """`source` is PATH or PATH:TAG; an explicit `ref` (tag) takes PATH as given."""
    path = source
    if ref is None:
        path, ref = split_ref(source)
    store = Store(path)
    try:
        if store.exists("index.json"):
            return _oci_image(store, ref)
        if store.exists("manifest.json"):
            return _docker_archive_image(store, ref)
        raise SmithError("%s: has neither index.json (OCI layout) nor manifest.json (docker "
                         "archive)" % path)
    except BaseException:
        store.close()
        raise


def _is_amd64_linux(p: Optional[Dict[str, Any]]) -> bool:
    return p is None or (p.get("os") == "linux" and p.get("architecture") == "amd64")


def _media_type(store: Store, desc: Dict[str, Any], what: str) -> Tuple[str, Any]:
    doc = read_json_blob(store, desc, what)
    if not isinstance(doc, dict):
        raise SmithError("%s: %s is not a JSON object" % (what, desc.get("digest")))
    mt = desc.get("mediaType") or doc.get("mediaType") or (
        OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    return mt, doc


def _oci_image(store: Store, ref: Optional[str]) -> Image:
    what = store.path
    index = store.read_json("index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise SmithError("%s: index.json has no manifests list; not an OCI layout" % what)
    cands = index["manifests"]
    if ref is not None:
        cands = [m for m in cands if (m.get("annotations") or {}).get(REF_NAME) == ref]
        if not cands:
            refs = sorted({(m.get("annotations") or {}).get(REF_NAME, "") for m in
                           index["manifests"]} - {""})
            raise SmithError("%s: no image tagged %r; tags present: %s" % (what, ref, refs or "none"))
    else:  # attachments (SBOMs, signatures) are not the image
        cands = [m for m in cands if not m.get("artifactType") and "subject" not in m]
    manifest = _pick(store, cands, what, depth=0)
    return _from_manifest(store, manifest, what)


def _pick(store: Store, cands: List[Dict[str, Any]], what: str, depth: int) -> Dict[str, Any]:
    if depth > 4:
        raise SmithError("%s: indexes nested more than 4 deep; refusing" % what)
    found = []
    for desc in cands:
        if not isinstance(desc, dict) or not _is_amd64_linux(desc.get("platform")):
            continue
        mt, doc = _media_type(store, desc, what)
        if mt in INDEXES:
            sub = [m for m in doc.get("manifests") or [] if isinstance(m, dict)]
            try:
                found.append(_pick(store, sub, what, depth + 1))
            except SmithError as e:
                if "no linux/amd64" not in str(e):
                    raise
        elif mt in MANIFESTS:
            if isinstance(doc.get("config"), dict) and doc["config"].get("mediaType") in (
                    OCI_CONFIG, DOCKER_CONFIG, None):
                found.append(doc)
        else:
            raise SmithError("%s: unsupported manifest media type %r" % (what, mt))
    if not found:
        raise SmithError("%s: no linux/amd64 image found in the index" % what)
    if len(found) > 1:
        raise SmithError("%s: holds %d linux/amd64 images; pick one with PATH:TAG"
                         % (what, len(found)))
    return found[0]


def _from_manifest(store: Store, manifest: Dict[str, Any], what: str) -> Image:
    config = read_json_blob(store, manifest["config"], what + " config")
    layers_desc = manifest.get("layers") or []
    diff_ids = _diff_ids(config, len(layers_desc), what)
    layers = []
    for desc, diff_id in zip(layers_desc, diff_ids):
        mt = desc.get("mediaType")
        if mt not in LAYER_TYPES:
            raise SmithError("%s: layer %s has unsupported media type %r"
                             % (what, desc.get("digest"), mt))
        layers.append(Layer(blob_name(desc.get("digest"), what), desc["digest"], diff_id, mt,
                            desc.get("size")))
    return Image(store, config, layers, manifest)


def _diff_ids(config: Any, count: int, what: str) -> List[str]:
    if not isinstance(config, dict):
        raise SmithError("%s: image config is not a JSON object" % what)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != count:
        raise SmithError("%s: config lists %d diff_ids for %d layers; the image is corrupt"
                         % (what, len(diff_ids), count))
    for d in diff_ids:
        blob_name(d, what + " diff_id")
    return list(diff_ids)


def _docker_archive_image(store: Store, ref: Optional[str]) -> Image:
    what = store.path
    entries = store.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise SmithError("%s: manifest.json is not a non-empty list; not a docker archive" % what)
    if ref is not None:
        entries = [e for e in entries if ref in (e.get("RepoTags") or [])
                   or any(t.endswith(":" + ref) for t in e.get("RepoTags") or [])]
        if not entries:
            raise SmithError("%s: no image tagged %r in the docker archive" % (what, ref))
    if len(entries) > 1:
        raise SmithError("%s: holds %d images; pick one with PATH:TAG" % (what, len(entries)))
    entry = entries[0]
    cfg_name = str(entry.get("Config", ""))
    with store.open(cfg_name) as f:
        data = f.read(MAX_JSON + 1)
    base = os.path.basename(cfg_name)
    hexpart = base[:-5] if base.endswith(".json") else base
    if len(hexpart) == 64 and hashlib.sha256(data).hexdigest() != hexpart:
        raise SmithError("%s: config %s does not hash to its name; the archive is corrupt or "
                         "tampered with" % (what, cfg_name))
    config = _parse_json(data, "%s: %s" % (what, cfg_name))
    names = entry.get("Layers") or []
    diff_ids = _diff_ids(config, len(names), what)
    layers = [Layer(str(n), None, d, "application/vnd.docker.image.rootfs.diff.tar", None)
              for n, d in zip(names, diff_ids)]
    return Image(store, config, layers, None)
