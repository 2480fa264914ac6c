"""Read an image from an OCI layout (directory or tar) or a docker-archive tar. Input is
untrusted: every blob read is checked against its descriptor's digest and size; every JSON
document (index.json, manifests, configs, a docker archive's manifest.json) is bounded in size
and nesting (smith.safe_json) and checked for the shape used here before anything reads it:
descriptors (digest `algorithm:hex` of the right length, size a non-negative integer,
annotations strings), the config fields a runtime takes. Malformed input is a SmithError that
names the file and what is wrong, never another exception.

The result is an `Image`: its config and its layers in order, each with the digest to verify
and the diff_id that its uncompressed tar must hash to.
"""
import hashlib
import os
import tarfile
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

from smith import safe_json
from smith.errors import SmithError
from smith.registry import digests
from smith.registry.platforms import DEFAULT_VARIANT, Platform, host_platform, of_dict, same_platform
from smith.safe_fs import Root, Unsafe
from smith.text import printable

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
MAX_DEPTH = 64  # JSON nesting of image metadata; real documents stay under 10
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
    value = safe_json.loads(data, what, MAX_JSON, expect=None)
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:  # iterative: a document nested up to the parser's limit must not crash a later walk
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SmithError("%s: JSON nested more than %d levels deep" % (what, MAX_DEPTH))
        children = v.values() if isinstance(v, dict) else v
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return value


def _kind(value: Any) -> str:
    return safe_json._kind(type(value))


def check_digest(value: Any, what: str) -> str:
    """`algorithm:hex` with a known algorithm and the right length of lowercase hex."""
    if not isinstance(value, str):
        raise SmithError("%s: the digest must be a JSON string, not %s" % (what, _kind(value)))
    if not digests.is_digest(value):
        raise SmithError("%s: malformed digest %r; expected sha256:<64 hex digits> or "
                         "sha512:<128 hex digits>" % (what, value[:200]))
    return value


def _strings(obj: Dict[str, Any], key: str, what: str, kind: type) -> None:
    """obj[key], when present, is a list of strings (kind list) or an object of strings (dict)."""
    value = safe_json.field(obj, key, kind, what, required=False)
    items = value.values() if isinstance(value, dict) else (value or [])
    for item in items:
        if not isinstance(item, str):
            raise SmithError("%s: %r must hold only strings, not %s" % (what, key, _kind(item)))


def check_descriptor(desc: Any, what: str) -> Dict[str, Any]:
    """An OCI content descriptor: mediaType, digest and size of the right types (and the optional
    fields used: annotations, platform, artifactType, urls), before any of it is used."""
    if not isinstance(desc, dict):
        raise SmithError("%s: a descriptor must be a JSON object, not %s" % (what, _kind(desc)))
    check_digest(safe_json.field(desc, "digest", str, what), what)
    size = safe_json.field(desc, "size", int, what)
    if size < 0:
        raise SmithError("%s: the size %d is negative" % (what, size))
    for key in ("mediaType", "artifactType"):
        safe_json.field(desc, key, str, what, required=False)
    _strings(desc, "annotations", what, dict)
    _strings(desc, "urls", what, list)
    platform = safe_json.field(desc, "platform", dict, what, required=False)
    for key in ("os", "architecture", "variant", "os.version"):
        safe_json.field(platform or {}, key, str, what + " platform", required=False)
    return desc


def _descriptors(doc: Dict[str, Any], key: str, what: str, required: bool) -> List[Dict[str, Any]]:
    items = safe_json.field(doc, key, list, what, required) or []
    return [check_descriptor(d, "%s %s[%d]" % (what, key, i)) for i, d in enumerate(items)]


def check_config(config: Any, what: str) -> Dict[str, Any]:
    """The image config fields smith reads (runtime config, rootfs, history) have their types."""
    if not isinstance(config, dict):
        raise SmithError("%s: the image config must be a JSON object, not %s" % (what, _kind(config)))
    for key in ("architecture", "os", "created"):
        safe_json.field(config, key, str, what, required=False)
    safe_json.field(config, "history", list, what, required=False)
    c = safe_json.field(config, "config", dict, what, required=False)
    if c is not None:
        inner = what + " config"
        for key in ("Entrypoint", "Cmd", "Env", "Shell"):
            _strings(c, key, inner, list)
        for key in ("WorkingDir", "User", "StopSignal"):
            safe_json.field(c, key, str, inner, required=False)
        _strings(c, "Labels", inner, dict)
        for key in ("ExposedPorts", "Volumes"):
            safe_json.field(c, key, dict, inner, required=False)
    rootfs = safe_json.field(config, "rootfs", dict, what, required=False)
    if rootfs is not None:
        _strings(rootfs, "diff_ids", what + " rootfs", list)
    return config


def blob_name(digest: str, what: str) -> str:
    algo, _, hexpart = check_digest(digest, what).partition(":")
    if algo != "sha256":
        raise SmithError("%s: digest %s: only sha256 blobs are supported" % (what, digest[:80]))
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
    digest = check_descriptor(desc, what)["digest"]
    if desc["size"] > MAX_JSON:
        raise SmithError("%s: %s is %d bytes, too large for image metadata (at most %d)"
                         % (what, digest, desc["size"], MAX_JSON))
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
                 manifest: Optional[Dict[str, Any]], platform: Optional[Platform] = None) -> None:
        self.store = store
        self.platform = platform  # what the index lists it for (else its config says)
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


def open_image(source: str, ref: Optional[str] = None, platform: Optional[Platform] = None) -> Image:
    """`source` is PATH or PATH:TAG; an explicit `ref` (tag) takes PATH as given. Of an index,
    the image for `platform` (default: the host's); a single image whatever its platform,
    unless `platform` names another."""
    path = source
    if ref is None:
        path, ref = split_ref(source)
    store = Store(path)
    try:
        if store.exists("index.json"):
            return _oci_image(store, ref, platform)
        if store.exists("manifest.json"):
            return _docker_archive_image(store, ref)
        raise SmithError("%s: has neither index.json (OCI layout) nor manifest.json (docker "
                         "archive)" % path)
    except BaseException:
        store.close()
        raise


MAX_DOCUMENTS = 256  # manifests and indexes read to find one image
MAX_NESTING = 4  # an index inside an index is rare; deeper is hostile


def _media_type(store: Store, desc: Dict[str, Any], what: str) -> Tuple[str, Dict[str, Any]]:
    doc = read_json_blob(store, desc, what)
    if not isinstance(doc, dict):
        raise SmithError("%s: %s is not a JSON object but %s" % (what, desc["digest"], _kind(doc)))
    declared = safe_json.field(doc, "mediaType", str, "%s: %s" % (what, desc["digest"]), required=False)
    mt = desc.get("mediaType") or declared or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    return mt, doc


def _index_candidates(store: Store, ref: Optional[str]) -> List[Dict[str, Any]]:
    what = store.path
    index = store.read_json("index.json")
    if not isinstance(index, dict):
        raise SmithError("%s: index.json must be a JSON object, not %s; not an OCI layout"
                         % (what, _kind(index)))
    manifests = _descriptors(index, "manifests", "%s: index.json" % what, required=True)
    if ref is not None:
        cands = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == ref]
        if not cands:
            refs = sorted({(m.get("annotations") or {}).get(REF_NAME, "") for m in manifests} - {""})
            raise SmithError("%s: no image tagged %r; tags present: %s" % (what, ref, refs or "none"))
        return cands
    # attachments (SBOMs, signatures) are not the image
    return [m for m in manifests if not m.get("artifactType") and "subject" not in m]


class _Leaf:
    """One image manifest reached from index.json, with the platform the index lists it for."""

    def __init__(self, desc: Dict[str, Any], manifest: Dict[str, Any]) -> None:
        self.desc, self.manifest = desc, manifest
        self.listed = of_dict(desc["platform"]) if desc.get("platform") else None
        self._config: Optional[Dict[str, Any]] = None

    def config(self, store: Store, what: str) -> Dict[str, Any]:
        if self._config is None:
            cdesc = self.manifest["config"]
            self._config = check_config(read_json_blob(store, cdesc, what + ": config"),
                                        "%s: config %s" % (what, cdesc["digest"]))
        return self._config

    def platform(self, store: Store, what: str) -> Optional[Platform]:
        """The platform listed in the index, which the config must not contradict (else the
        config's own, for a plain manifest)."""
        config = self.config(store, what)
        have = of_dict(config) if config.get("architecture") and config.get("os") else None
        if self.listed is None:
            return have
        if have is not None and not _matches(have, self.listed):
            raise SmithError("%s: manifest %s is listed for %s but its config says %s; the index "
                             "is wrong or tampered with, refusing to pick either"
                             % (what, self.desc["digest"], printable(str(self.listed), 80),
                                printable(str(have), 80)))
        return self.listed


def _platform_key(desc: Dict[str, Any]) -> Optional[str]:
    p = desc.get("platform")
    if not p or p.get("os") == "unknown":  # buildx attestations are listed as unknown/unknown
        return None
    pf = of_dict(p)
    return str(Platform(pf.os, pf.architecture, DEFAULT_VARIANT.get(pf.architecture, pf.variant)
                        if not pf.variant else pf.variant))


def _leaves(store: Store, cands: List[Dict[str, Any]], what: str, depth: int, budget: List[int],
            path: Tuple[str, ...], wanted: Optional[Platform]) -> List[_Leaf]:
    """Every image manifest under `cands` (indexes followed, at most MAX_NESTING deep), but
    none listed for another platform than `wanted`: those may be absent from the layout."""
    if depth > MAX_NESTING:
        raise SmithError("%s: indexes nested more than %d deep; refusing" % (what, MAX_NESTING))
    listed: Dict[str, str] = {}
    for desc in cands:
        key = _platform_key(desc)
        if key is not None and key in listed:
            raise SmithError("%s: %s lists %s twice (%s and %s); which one would run is "
                             "ambiguous, refusing" % (what, path[-1] if path else "index.json",
                                                      printable(key, 80), listed[key], desc["digest"]))
        if key is not None:
            listed[key] = desc["digest"]
    found: List[_Leaf] = []
    for desc in cands:
        if wanted is not None and desc.get("platform") and not _matches(of_dict(desc["platform"]), wanted):
            continue
        if desc["digest"] in path:
            raise SmithError("%s: index %s lists itself (through %s); refusing a cycle"
                             % (what, desc["digest"], " -> ".join(path)))
        budget[0] -= 1
        if budget[0] < 0:
            raise SmithError("%s: more than %d manifests and indexes to read; refusing"
                             % (what, MAX_DOCUMENTS))
        mt, doc = _media_type(store, desc, what)
        doc_what = "%s: %s %s" % (what, "index" if mt in INDEXES else "manifest", desc["digest"])
        if mt in INDEXES:
            sub = _descriptors(doc, "manifests", doc_what, required=True)
            found.extend(_leaves(store, sub, what, depth + 1, budget, path + (desc["digest"],), wanted))
        elif mt in MANIFESTS:
            config = check_descriptor(safe_json.field(doc, "config", dict, doc_what), doc_what + " config")
            _descriptors(doc, "layers", doc_what, required=False)
            if config.get("mediaType") in (OCI_CONFIG, DOCKER_CONFIG, None):
                found.append(_Leaf(desc, doc))
        else:
            raise SmithError("%s: unsupported manifest media type %r" % (what, mt[:200]))
    return found


def _all_leaves(store: Store, ref: Optional[str], wanted: Optional[Platform] = None) -> List[_Leaf]:
    return _leaves(store, _index_candidates(store, ref), store.path, 0, [MAX_DOCUMENTS], (), wanted)


def _oci_image(store: Store, ref: Optional[str], platform: Optional[Platform]) -> Image:
    what = store.path
    wanted = platform or host_platform()
    chosen = [leaf for leaf in _all_leaves(store, ref, wanted)
              if leaf.platform(store, what) is None
              or _matches(leaf.platform(store, what), wanted)]  # type: ignore[arg-type]
    if not chosen:
        leaves = _all_leaves(store, ref)
        if platform is None and len(leaves) == 1:
            chosen = leaves  # one image: whatever its platform (a foreign one runs emulated)
        else:
            offered = sorted({str(leaf.platform(store, what)) for leaf in leaves})
            raise SmithError("%s: no %s image in the index; it offers %s; choose one with "
                             "--platform (or the platform= field)" % (
                                 what, wanted, printable(", ".join(offered), 400) or "none"))
    if len(chosen) > 1:
        raise SmithError("%s: holds %d %s images; pick one with PATH:TAG"
                         % (what, len(chosen), wanted))
    leaf = chosen[0]
    return _from_manifest(store, leaf.manifest, what, leaf.platform(store, what))


def _matches(have: Platform, wanted: Platform) -> bool:
    """A missing variant on either side matches (as registry.platforms.select_platform)."""
    if (have.os, have.architecture) != (wanted.os, wanted.architecture):
        return False
    return not have.variant or not wanted.variant or same_platform(have, wanted)


def image_platforms(source: str, ref: Optional[str] = None) -> List[Optional[Platform]]:
    """The platform of each image in `source` (None: an image that says none), checked as
    open_image checks them; one entry for a single-platform image or a docker archive."""
    path = source
    if ref is None:
        path, ref = split_ref(source)
    store = Store(path)
    try:
        if not store.exists("index.json"):
            return [None]
        return [leaf.platform(store, path) for leaf in _all_leaves(store, ref)]
    finally:
        store.close()


def _from_manifest(store: Store, manifest: Dict[str, Any], what: str,
                   platform: Optional[Platform]) -> Image:
    """`manifest` was checked by _leaves: config and layers are descriptors."""
    cdesc = manifest["config"]
    config = check_config(read_json_blob(store, cdesc, what + ": config"),
                          "%s: config %s" % (what, cdesc["digest"]))
    layers_desc = manifest.get("layers") or []
    diff_ids = _diff_ids(config, len(layers_desc), what)
    layers = []
    for desc, diff_id in zip(layers_desc, diff_ids):
        mt = desc.get("mediaType")
        if mt not in LAYER_TYPES:
            raise SmithError("%s: layer %s has unsupported media type %r"
                             % (what, desc["digest"], mt if not isinstance(mt, str) else mt[:200]))
        layers.append(Layer(blob_name(desc["digest"], what), desc["digest"], diff_id, mt, desc["size"]))
    return Image(store, config, layers, manifest, platform)


def _diff_ids(config: Dict[str, Any], count: int, what: str) -> List[str]:
    """`config` was checked by check_config: rootfs.diff_ids, when present, is a list of strings."""
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != count:
        raise SmithError("%s: config lists %d diff_ids for %d layers; the image is corrupt"
                         % (what, len(diff_ids), count))
    for d in diff_ids:
        blob_name(d, what + ": config diff_id")
    return list(diff_ids)


def _docker_archive_image(store: Store, ref: Optional[str]) -> Image:
    what = store.path
    entries = store.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise SmithError("%s: manifest.json is not a non-empty list; not a docker archive" % what)
    for i, e in enumerate(entries):
        ewhat = "%s: manifest.json [%d]" % (what, i)
        if not isinstance(e, dict):
            raise SmithError("%s: must be a JSON object, not %s" % (ewhat, _kind(e)))
        safe_json.field(e, "Config", str, ewhat)
        _strings(e, "Layers", ewhat, list)
        _strings(e, "RepoTags", ewhat, list)
    if ref is not None:
        entries = [e for e in entries if ref in (e.get("RepoTags") or [])
                   or any(t.endswith(":" + ref) for t in e.get("RepoTags") or [])]
        if not entries:
            raise SmithError("%s: no image tagged %r in the docker archive" % (what, ref))
    if len(entries) > 1:
        raise SmithError("%s: holds %d images; pick one with PATH:TAG" % (what, len(entries)))
    entry = entries[0]
    cfg_name = entry["Config"]
    with store.open(cfg_name) as f:
        data = f.read(MAX_JSON + 1)
    base = os.path.basename(cfg_name)
    hexpart = base[:-5] if base.endswith(".json") else base
    if len(hexpart) == 64 and hashlib.sha256(data).hexdigest() != hexpart:
        raise SmithError("%s: config %s does not hash to its name; the archive is corrupt or "
                         "tampered with" % (what, cfg_name))
    config = check_config(_parse_json(data, "%s: %s" % (what, cfg_name)), "%s: %s" % (what, cfg_name))
    names = entry.get("Layers") or []
    diff_ids = _diff_ids(config, len(names), what)
    layers = [Layer(n, None, d, "application/vnd.docker.image.rootfs.diff.tar", None)
              for n, d in zip(names, diff_ids)]
    return Image(store, config, layers, None)
