"""Just enough of the OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>) to push
from and pull into. Writing goes to a temp directory next to the target, renamed at the end."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import json
import os

from smith import safe_json
from smith.errors import SmithError
from smith.registry import media_types
from smith.registry.descriptors import check_index, descriptor
from smith.registry.digests import check_digest, digest_of, verify_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


def blob_path(layout: str, digest: str) -> str:
    algorithm, _, hexpart = check_digest(digest, layout).partition(":")
    return os.path.join(layout, "blobs", algorithm, hexpart)


def read_index(layout: str) -> dict:
    path = os.path.join(layout, "index.json")
    if not os.path.isfile(os.path.join(layout, "oci-layout")) or not os.path.isfile(path):
        raise SmithError("%s is not an OCI image layout (no oci-layout / index.json); build it "
                         "with `pants package` or `smith image`" % layout)
    return check_index(safe_json.load_file(path), path)


def read_json_blob(layout: str, digest: str) -> Tuple[bytes, dict]:
    """A manifest/index/config blob, checked against its digest."""
    path = blob_path(layout, digest)
    try:
        with open(path, "rb") as f:
            data = f.read(safe_json.MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise SmithError("%s: blob %s is missing; the layout is incomplete" % (layout, digest))
    what = "%s: blob %s" % (layout, digest)
    if len(data) > safe_json.MAX_JSON_BYTES:
        raise SmithError("%s: more than %d bytes of JSON" % (what, safe_json.MAX_JSON_BYTES))
    verify_bytes(data, digest, "%s in layout %s" % (digest, layout))
    return data, safe_json.loads(data, what)


def media_type_of(descriptor: dict, manifest: dict) -> str:
    return manifest.get("mediaType") or descriptor.get("mediaType") or media_types.OCI_MANIFEST


def is_artifact_for_subject(layout: str, entry: dict) -> Optional[str]:
    """The subject digest of an index.json entry that is an OCI 1.1 artifact (e.g. an SBOM)."""
    if entry.get("mediaType") not in (media_types.OCI_MANIFEST, None):
        return None
    _, manifest = read_json_blob(layout, entry["digest"])
    subject = manifest.get("subject")
    if subject is None:
        return None
    return descriptor(subject, "%s: %s: subject" % (layout, entry["digest"]))["digest"]


def select_image(layout: str, ref: Optional[str]) -> dict:
    """The index.json entry to push: named `ref`, else `latest`, else the only image."""
    entries = read_index(layout)["manifests"]
    names = [(e.get("annotations") or {}).get(media_types.REF_NAME) for e in entries]
    wanted = ref or "latest"
    named = [e for e, n in zip(entries, names) if n == wanted]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise SmithError("%s: %d images are named %r in index.json" % (layout, len(named), wanted))
    if ref is None:
        images = [e for e in entries if not is_artifact_for_subject(layout, e)]
        if len(images) == 1:
            return images[0]
    known = sorted(n for n in names if n)
    raise SmithError("%s: no image named %r; write LAYOUT_DIR:NAME with one of %s" % (
        layout, wanted, ", ".join(known) or "(no named images)"))


def referrers_in_layout(layout: str, subject_digests: List[str]) -> List[dict]:
    """index.json entries whose manifest names one of `subject_digests` as its subject."""
    return [e for e in read_index(layout)["manifests"]
            if is_artifact_for_subject(layout, e) in subject_digests]


class LayoutWriter:
    """Collects blobs in a temp dir beside `target`; `commit()` renames it into place."""

    def __init__(self, target: str):
        self.target = os.path.abspath(target)
        if os.path.exists(self.target) and (not os.path.isdir(self.target)
                                            or os.listdir(self.target)):
            raise SmithError("%s already exists and is not empty; remove it or pull into a new "
                             "directory" % target)
        parent = os.path.dirname(self.target)
        os.makedirs(parent, exist_ok=True)
        self.tmp = _private_dir(parent, ".%s.partial-" % os.path.basename(self.target))
        os.makedirs(os.path.join(self.tmp, "blobs", "sha256"))
        self.entries: List[dict] = []

    def path_for(self, digest: str) -> str:
        path = blob_path(self.tmp, digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def add_bytes(self, data: bytes) -> str:
        digest = digest_of(data)
        with open(self.path_for(digest), "wb") as f:
            f.write(data)
        return digest

    def add_entry(self, descriptor: dict) -> None:
        self.entries.append(descriptor)

    def commit(self) -> None:
        with open(os.path.join(self.tmp, "oci-layout"), "w") as f:
            json.dump(LAYOUT_VERSION, f, sort_keys=True, separators=(",", ":"))
        index: Dict[str, object] = {"schemaVersion": 2, "mediaType": media_types.OCI_INDEX,
                                    "manifests": self.entries}
        with open(os.path.join(self.tmp, "index.json"), "w") as f:
            json.dump(index, f, sort_keys=True, separators=(",", ":"))
        for root, dirs, files in os.walk(self.tmp):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        if os.path.isdir(self.target):
            os.rmdir(self.target)  # empty, checked in __init__
        os.rename(self.tmp, self.target)

    def abort(self) -> None:
        import shutil  # with tempfile (random, bz2, lzma): ~12 M instructions a pull rarely needs
        shutil.rmtree(self.tmp, ignore_errors=True)


def _private_dir(parent: str, prefix: str) -> str:
    """A new directory only we can enter, as tempfile.mkdtemp makes it."""
    for _ in range(100):
        path = os.path.join(parent, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise SmithError("%s: cannot create a directory for the pull" % parent)
