"""Push an image (manifest or index) from an OCI layout, with the artifacts that refer to it."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import json
import os

from smith import safe_json
from smith.errors import SmithError
from smith.registry import media_types
from smith.registry.client import RegistryClient
from smith.registry.descriptors import check_index, check_manifest, distinct_blobs
from smith.registry.layout import (blob_path, media_type_of, read_json_blob, referrers_in_layout,
                                   select_image)
from smith.registry.transport import parallel_map

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional


class Pusher:
    """Blobs go up `jobs` at a time (the layers, largest first, then the config), each checked
    with HEAD first and mounted from another repository when the client knows one that holds it;
    a manifest goes up only after all its blobs, an index only after its manifests."""

    def __init__(self, client: RegistryClient, layout: str, repo: str,
                 mount_from: Optional[str] = None, jobs: int = 4):
        self.client, self.layout, self.repo = client, layout, repo
        self.mount_from, self.jobs = mount_from, max(1, jobs)
        self.stats: Dict[str, int] = {"exists": 0, "mounted": 0, "uploaded": 0}

    def _upload(self, descriptor: dict) -> str:
        digest, size = descriptor["digest"], descriptor.get("size")
        path = blob_path(self.layout, digest)
        try:
            actual = os.path.getsize(path)
        except FileNotFoundError:
            raise SmithError("%s: blob %s is missing; the layout is incomplete" % (
                self.layout, digest))
        if size is not None and actual != size:
            raise SmithError("%s: blob %s has %d bytes but its descriptor says %d; the layout is "
                             "corrupt, rebuild it" % (self.layout, digest, actual, size))
        return self.client.upload_blob(self.repo, digest, actual, path, self.mount_from)

    def push_tree(self, descriptor: dict, tag: Optional[str] = None) -> str:
        """Blobs and children first, then the manifest itself by digest (or under `tag`)."""
        data, manifest = read_json_blob(self.layout, descriptor["digest"])
        what = "%s: %s" % (self.layout, descriptor["digest"])
        safe_json.field(manifest, "mediaType", str, what, required=False)
        media_type = media_type_of(descriptor, manifest)
        if media_type in media_types.INDEXES:
            for child in check_index(manifest, what)["manifests"]:
                self.push_tree(child)
        else:
            # a foreign layer stays where its URLs point
            checked = check_manifest(manifest, what)
            blobs = [d for d in distinct_blobs(checked, what) if not d.get("urls")]
            config = checked["config"]["digest"]
            # Largest layers first keep every worker busy to the end; the config is tiny.
            blobs.sort(key=lambda d: (d["digest"] == config, -d["size"]))
            for outcome in parallel_map(self._upload, blobs, self.jobs):
                self.stats[outcome] += 1
        digest, resp = self.client.put_manifest_response(self.repo, tag or descriptor["digest"],
                                                         data, media_type)
        subject = manifest.get("subject")
        if isinstance(subject, dict) and not resp.header("OCI-Subject"):
            self._add_to_referrers_tag(subject["digest"], digest, data, manifest)
        return digest

    def _add_to_referrers_tag(self, subject: str, digest: str, data: bytes, manifest: dict) -> None:
        """Registries without the referrers API (distribution 2.8) get the spec's fallback:
        an index tagged `<alg>-<hex>` of the subject that lists its referrers."""
        tag = subject.replace(":", "-")
        found = self.client.get_manifest(self.repo, tag, missing_ok=True)
        what = "%s/%s:%s" % (self.client.registry, self.repo, tag)
        index = check_index(safe_json.loads(found[0], what), what) if found else {
            "schemaVersion": 2, "mediaType": media_types.OCI_INDEX, "manifests": []}
        if any(m["digest"] == digest for m in index["manifests"]):
            return
        entry = {"mediaType": manifest.get("mediaType", media_types.OCI_MANIFEST),
                 "digest": digest, "size": len(data)}
        artifact_type = manifest.get("artifactType") or (manifest.get("config") or {}).get(
            "mediaType")
        if artifact_type:
            entry["artifactType"] = artifact_type
        if manifest.get("annotations"):
            entry["annotations"] = manifest["annotations"]
        index["manifests"].append(entry)
        body = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
        self.client.put_manifest(self.repo, tag, body, media_types.OCI_INDEX)


def push_layout(client: RegistryClient, layout: str, ref: Optional[str], repo: str,
                tags: List[str], mount_from: Optional[str] = None,
                stats: Optional[Dict[str, int]] = None, jobs: int = 4) -> str:
    """Push the chosen image of `layout` and its referrers; tag it; return its digest.
    `stats`, if given, receives how many blobs existed, were mounted or uploaded."""
    entry = select_image(layout, ref)
    pusher = Pusher(client, layout, repo, mount_from, jobs)
    if stats is not None:
        pusher.stats = stats
        stats.update({"exists": 0, "mounted": 0, "uploaded": 0})
    data, manifest = read_json_blob(layout, entry["digest"])
    subjects = [entry["digest"]]
    if media_type_of(entry, manifest) in media_types.INDEXES:
        subjects += [m["digest"] for m in manifest.get("manifests") or []]
    referrers = referrers_in_layout(layout, subjects)
    # Without referrers the first tag is the manifest's one PUT (a PUT by digest and then by
    # tag would store it twice); with them, tags come last, once the referrers are there.
    first = tags[0] if tags and not referrers else None
    digest = pusher.push_tree(entry, first)
    for artifact in referrers:
        pusher.push_tree(artifact)
    for tag in tags:
        if tag != first:
            client.put_manifest(repo, tag, data, media_type_of(entry, manifest))
    return digest
