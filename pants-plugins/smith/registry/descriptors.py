"""The shapes of the JSON documents a registry (or an OCI layout) hands us: manifests, indexes
and the descriptors inside them. Every document is parsed with `smith.safe_json` (bounded size and
nesting) and checked here before any field is used, so a malformed answer is a SmithError that
names it, never an AttributeError, and every digest is validated before it names a URL or a file."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

from smith import safe_json
from smith.errors import SmithError
from smith.registry import media_types
from smith.registry.digests import check_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Union

MAX_SIZE = (1 << 63) - 1  # sizes beyond a signed 64-bit int are no real blob


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number",
            bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _strings(obj: dict, key: str, what: str) -> None:
    """An optional field that must be a list of strings."""
    values = safe_json.field(obj, key, list, what, required=False)
    for n, v in enumerate(values or []):
        if not isinstance(v, str):
            raise SmithError("%s: %s[%d] must be a JSON string, not %s" % (what, key, n, _kind(v)))


def _string_map(obj: dict, key: str, what: str) -> None:
    values = safe_json.field(obj, key, dict, what, required=False)
    for k, v in (values or {}).items():
        if not isinstance(v, str):
            raise SmithError("%s: %s[%r] must be a JSON string, not %s" % (what, key, k[:100],
                                                                           _kind(v)))


def descriptor(obj: Any, what: str) -> dict:
    """A content descriptor: a digest of a supported algorithm, a size, optional urls/platform."""
    if not isinstance(obj, dict):
        raise SmithError("%s: expected a JSON object (a descriptor), found %s" % (what, _kind(obj)))
    safe_json.field(obj, "mediaType", str, what, required=False)
    safe_json.field(obj, "artifactType", str, what, required=False)
    check_digest(safe_json.field(obj, "digest", str, what), "%s: digest" % what)
    size = safe_json.field(obj, "size", int, what)
    if not 0 <= size <= MAX_SIZE:
        raise SmithError("%s: size %d is out of range" % (what, size))
    _strings(obj, "urls", what)
    _string_map(obj, "annotations", what)
    platform = safe_json.field(obj, "platform", dict, what, required=False)
    if platform is not None:
        where = "%s: platform" % what
        safe_json.field(platform, "os", str, where)
        safe_json.field(platform, "architecture", str, where)
        safe_json.field(platform, "variant", str, where, required=False)
        safe_json.field(platform, "os.version", str, where, required=False)
        _strings(platform, "os.features", where)
        _strings(platform, "features", where)
    return obj


def _schema(doc: dict, what: str) -> None:
    version = safe_json.field(doc, "schemaVersion", int, what, required=False)
    if version is not None and version != 2:
        raise SmithError("%s: schemaVersion %d; smith reads schema 2 manifests and indexes only"
                         % (what, version))
    safe_json.field(doc, "mediaType", str, what, required=False)


def check_manifest(doc: Any, what: str) -> dict:
    """An image manifest (OCI or Docker v2): a config descriptor and a list of layer ones."""
    if not isinstance(doc, dict):
        raise SmithError("%s: expected a JSON object, found %s" % (what, _kind(doc)))
    _schema(doc, what)
    descriptor(safe_json.field(doc, "config", dict, what), "%s: config" % what)
    for n, layer in enumerate(safe_json.field(doc, "layers", list, what)):
        descriptor(layer, "%s: layers[%d]" % (what, n))
    if doc.get("subject") is not None:
        descriptor(doc["subject"], "%s: subject" % what)
    _string_map(doc, "annotations", what)
    safe_json.field(doc, "artifactType", str, what, required=False)
    return doc


def check_index(doc: Any, what: str) -> dict:
    """An image index / manifest list: a list of manifest descriptors."""
    if not isinstance(doc, dict):
        raise SmithError("%s: expected a JSON object, found %s" % (what, _kind(doc)))
    _schema(doc, what)
    for n, child in enumerate(safe_json.field(doc, "manifests", list, what)):
        descriptor(child, "%s: manifests[%d]" % (what, n))
    if doc.get("subject") is not None:
        descriptor(doc["subject"], "%s: subject" % what)
    _string_map(doc, "annotations", what)
    return doc


def parse_manifest(data: Union[bytes, str], what: str) -> dict:
    return check_manifest(safe_json.loads(data, what), what)


def parse_index(data: Union[bytes, str], what: str) -> dict:
    return check_index(safe_json.loads(data, what), what)


def parse_document(data: Union[bytes, str], media_type: Optional[str], what: str) -> dict:
    """A manifest or an index, by its declared `mediaType` (else `media_type`, e.g. from the
    HTTP Content-Type or the descriptor that named it)."""
    doc = safe_json.loads(data, what)
    declared = safe_json.field(doc, "mediaType", str, what, required=False) or media_type
    if declared in media_types.INDEXES:
        return check_index(doc, what)
    return check_manifest(doc, what)


def distinct_blobs(manifest: dict, what: str) -> List[dict]:
    """config + layers of a checked manifest, each digest once (a digest listed twice with two
    sizes is refused: one of them is a lie)."""
    blobs: List[dict] = []
    sizes = {}
    for d in [manifest["config"]] + list(manifest["layers"]):
        if d["digest"] in sizes:
            if sizes[d["digest"]] != d["size"]:
                raise SmithError("%s: blob %s is listed with sizes %d and %d" % (
                    what, d["digest"], sizes[d["digest"]], d["size"]))
            continue
        sizes[d["digest"]] = d["size"]
        blobs.append(d)
    return blobs
