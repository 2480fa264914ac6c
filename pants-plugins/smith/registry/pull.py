"""Pull one image by digest (or tag) into a new OCI layout; every byte is digest-checked and
nothing appears at the destination unless all of it arrived intact."""
import json
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

from smith.errors import SmithError
from smith.registry import media_types
from smith.registry.client import RegistryClient
from smith.registry.layout import LayoutWriter
from smith.registry.platforms import Platform, select_platform
from smith.registry.reference import Reference


def pull_image(client: RegistryClient, ref: Reference, platform: Platform, dest: str,
               ref_name: str = "latest", jobs: int = 3) -> str:
    """Write the image for `platform` to the layout `dest`; return its manifest digest."""
    target = ref.digest or ref.tag or "latest"
    data, media_type, digest = client.get_manifest(ref.repository, target)  # type: ignore[misc]
    chosen_platform = None
    for _ in range(3):  # an index may (rarely) point at another index
        if media_type not in media_types.INDEXES:
            break
        index = json.loads(data)
        chosen = select_platform(index.get("manifests") or [], platform, "%s@%s" % (ref, digest))
        chosen_platform = chosen.get("platform")
        data, media_type, digest = client.get_manifest(  # type: ignore[misc]
            ref.repository, chosen["digest"])
    if media_type not in media_types.IMAGE_MANIFESTS:
        raise SmithError("%s: indexes nested too deep" % ref)
    manifest = json.loads(data)
    blobs: List[dict] = []
    for d in [manifest.get("config")] + list(manifest.get("layers") or []):
        if not isinstance(d, dict) or "digest" not in d:
            raise SmithError("%s: manifest %s has a malformed config/layer entry" % (ref, digest))
        if d.get("urls"):
            raise SmithError("%s: layer %s is a foreign layer (%s); smith does not fetch those"
                             % (ref, d["digest"], d.get("urls")))
        if d["digest"] not in {b["digest"] for b in blobs}:
            blobs.append(d)

    writer = LayoutWriter(dest)
    try:
        def fetch(d: dict) -> None:
            client.fetch_blob(ref.repository, d["digest"], writer.path_for(d["digest"]),
                              d.get("size"))
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(pool.map(fetch, blobs))
        if chosen_platform is None:
            _check_config_platform(writer.path_for(manifest["config"]["digest"]), platform,
                                   "%s@%s" % (ref, digest))
        writer.add_bytes(data)
        entry = {"mediaType": media_type, "digest": digest, "size": len(data),
                 "annotations": {media_types.REF_NAME: ref_name}}
        if chosen_platform:
            entry["platform"] = chosen_platform
        writer.add_entry(entry)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return digest


def _check_config_platform(config_path: str, wanted: Platform, what: str) -> None:
    """A digest naming a single-platform image must still be for the platform asked for."""
    try:
        with open(config_path, "rb") as f:
            config = json.load(f)
    except ValueError:
        raise SmithError("%s: image config is not JSON" % what)
    have = (config.get("os"), config.get("architecture"))
    if None not in have and have != (wanted.os, wanted.architecture):
        raise SmithError("%s is an image for %s/%s, not %s; pass --platform %s/%s (or the "
                         "platform= field) if that is what you want" % (
                             what, have[0], have[1], wanted, have[0], have[1]))


def check_pinned(ref: Reference, allow_tag: bool) -> Optional[str]:
    """A pull must name a digest: a tag can move, and the build would stop being reproducible."""
    if ref.digest or allow_tag:
        return None
    return ("%s is not pinned: add @sha256:... (find it with `skopeo inspect --format "
            "'{{.Digest}}' docker://%s`), or pass --allow-tag" % (ref, ref))
