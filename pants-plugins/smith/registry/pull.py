"""Pull one image by digest (or tag) into a new OCI layout; every byte is digest-checked and
nothing appears at the destination unless all of it arrived intact.

A pull pinned by digest stays pinned all the way down: the index, the manifest it chooses, the
config and the layers are each fetched by a digest validated first (an index entry whose `digest`
is `latest` is refused, never fetched as a tag), each capped at its descriptor's size and checked
against its digest as it streams."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

from smith import safe_json
from smith.errors import SmithError
from smith.registry import media_types
from smith.registry.client import RegistryClient
from smith.registry.descriptors import check_index, check_manifest, distinct_blobs
from smith.registry.layout import LayoutWriter
from smith.registry.platforms import Platform, check_unique_platforms, same_platform, select_platform
from smith.registry.reference import Reference
from smith.registry.transport import parallel_map, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Tuple

MAX_NESTING = 3  # an index may (rarely) point at another index


def _top_manifest(client: RegistryClient, ref: Reference,
                  verify: Optional[Callable[[RegistryClient, str], None]]) -> Tuple[bytes, str, str]:
    """The manifest or index `ref` names (by digest when pinned: never through a tag), checked
    by `verify` before anything else is fetched."""
    if ref.digest:
        data, media_type, digest = client.get_manifest_by_digest(ref.repository, ref.digest)
    else:
        data, media_type, digest = client.get_manifest(  # type: ignore[misc]
            ref.repository, ref.tag or "latest")
    if verify is not None:
        verify(client, digest)
    return data, media_type, digest


def pull_image(client: RegistryClient, ref: Reference, platform: Platform, dest: str,
               ref_name: str = "latest", jobs: int = 4,
               verify: Optional[Callable[[RegistryClient, str], None]] = None) -> str:
    """Write the image for `platform` to the layout `dest`; return its manifest digest.
    `verify(client, digest)` (e.g. a signature check) runs on the top-level digest before
    anything else is fetched, and raises to refuse the image."""
    data, media_type, digest = _top_manifest(client, ref, verify)
    where = "%s/%s" % (ref.registry, ref.repository)
    what = "%s@%s" % (where, digest)
    chosen_platform = None
    seen = {digest}
    for _ in range(MAX_NESTING):
        if media_type not in media_types.INDEXES:
            break
        index = check_index(safe_json.loads(data, what), what)
        check_unique_platforms(index["manifests"], what)
        chosen = select_platform(index["manifests"], platform, what)
        chosen_platform = chosen.get("platform")
        if chosen["digest"] in seen:
            raise SmithError("%s lists %s, an index already on the way to it; refusing a cycle"
                             % (what, chosen["digest"]))
        seen.add(chosen["digest"])
        data, media_type, digest = client.get_manifest_by_digest(
            ref.repository, chosen["digest"], chosen["size"])
        what = "%s@%s" % (where, digest)
    if media_type not in media_types.IMAGE_MANIFESTS:
        raise SmithError("%s: indexes nested more than %d deep" % (what, MAX_NESTING))
    manifest = check_manifest(safe_json.loads(data, what), what)
    blobs = distinct_blobs(manifest, what)
    for d in blobs:
        if d.get("urls"):
            raise SmithError("%s: layer %s is a foreign layer (%s); smith does not fetch those"
                             % (what, d["digest"], ", ".join(d["urls"])[:300]))

    writer = LayoutWriter(dest)
    try:
        def fetch(d: dict) -> None:
            client.fetch_blob(ref.repository, d["digest"], writer.path_for(d["digest"]),
                              d["size"])
        parallel_map(fetch, blobs, jobs)
        _check_config_platform(writer.path_for(manifest["config"]["digest"]), platform,
                               what, chosen_platform)
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


def pull_all_platforms(client: RegistryClient, ref: Reference, dest: str, ref_name: str = "latest",
                       jobs: int = 4, verify: Optional[Callable[[RegistryClient, str], None]] = None
                       ) -> str:
    """Write the whole index (every platform's manifest, config and layers, the index's own
    bytes, so its digest is kept) to the layout `dest`; return the index digest. A digest that
    names one image pulls that image. Indexes inside the index are refused (none of smith's)."""
    data, media_type, digest = _top_manifest(client, ref, verify)
    where = "%s/%s" % (ref.registry, ref.repository)
    what = "%s@%s" % (where, digest)
    if media_type not in media_types.INDEXES:
        parsed = Reference(ref.registry, ref.repository, None, digest)
        return pull_image(client, parsed, Platform("", "", None), dest, ref_name, jobs)
    index = check_index(safe_json.loads(data, what), what)
    check_unique_platforms(index["manifests"], what)
    children = []
    for child in index["manifests"]:
        child_what = "%s@%s" % (where, child["digest"])
        if child["digest"] == digest or child.get("mediaType") in media_types.INDEXES:
            raise SmithError("%s lists %s, an index; smith keeps one level of index only"
                             % (what, child["digest"]))
        body, child_type, child_digest = client.get_manifest_by_digest(
            ref.repository, child["digest"], child["size"])
        if child_type not in media_types.IMAGE_MANIFESTS:
            raise SmithError("%s is %s, not an image manifest" % (child_what, printable(child_type, 80)))
        manifest = check_manifest(safe_json.loads(body, child_what), child_what)
        children.append((child, body, child_digest, manifest, child_what))
    writer = LayoutWriter(dest)
    try:
        blobs, sizes = [], {}
        for child, _, _, manifest, child_what in children:
            for d in distinct_blobs(manifest, child_what):
                if d.get("urls"):
                    raise SmithError("%s: layer %s is a foreign layer; smith does not fetch those"
                                     % (child_what, d["digest"]))
                if sizes.setdefault(d["digest"], d["size"]) != d["size"]:
                    raise SmithError("%s: blob %s is listed with sizes %d and %d" % (
                        what, d["digest"], sizes[d["digest"]], d["size"]))
                if all(b["digest"] != d["digest"] for b in blobs):
                    blobs.append(d)

        def fetch(d: dict) -> None:
            client.fetch_blob(ref.repository, d["digest"], writer.path_for(d["digest"]), d["size"])
        parallel_map(fetch, blobs, jobs)
        for child, body, _, manifest, child_what in children:
            p = child.get("platform") or {}
            if p and p.get("os") != "unknown":
                _check_config_platform(writer.path_for(manifest["config"]["digest"]),
                                       Platform(p["os"], p["architecture"], p.get("variant")),
                                       child_what, p)
            writer.add_bytes(body)
        writer.add_bytes(data)
        writer.add_entry({"mediaType": media_type, "digest": digest, "size": len(data),
                          "annotations": {media_types.REF_NAME: ref_name}})
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return digest


def _check_config_platform(config_path: str, wanted: Platform, what: str,
                           listed: Optional[dict]) -> None:
    """A digest naming a single-platform image must still be for the platform asked for; an
    image chosen from an index must be what the index lists it for."""
    where = "%s: image config" % what
    config = safe_json.load_file(config_path, where)
    have = (safe_json.field(config, "os", str, where, required=False),
            safe_json.field(config, "architecture", str, where, required=False))
    variant = safe_json.field(config, "variant", str, where, required=False)
    if listed is not None:
        entry = Platform(listed["os"], listed["architecture"], listed.get("variant"))
        mine = Platform(have[0] or "", have[1] or "", variant)
        if None not in have and not (
                (mine.os, mine.architecture) == (entry.os, entry.architecture)
                and (not variant or not entry.variant or same_platform(mine, entry))):
            raise SmithError("%s is listed in its index for %s but its config says %s; the index "
                             "is wrong or tampered with, refusing it" % (
                                 what, printable(str(entry), 80), printable(str(mine), 80)))
        return
    if None not in have and have != (wanted.os, wanted.architecture):
        raise SmithError("%s is an image for %s/%s, not %s; pass --platform %s/%s (or the "
                         "platform= field) if that is what you want" % (
                             what, printable(have[0], 40), printable(have[1], 40), wanted,
                             printable(have[0], 40), printable(have[1], 40)))


def check_pinned(ref: Reference, allow_tag: bool) -> Optional[str]:
    """A pull must name a digest: a tag can move, and the build would stop being reproducible."""
    if ref.digest or allow_tag:
        return None
    return ("%s is not pinned: add @sha256:... (find it with `skopeo inspect --format "
            "'{{.Digest}}' docker://%s`), or pass --allow-tag" % (ref, ref))
