"""`smith image-index`: several one-platform OCI layouts (from `smith image --platform`) -> one
layout whose index.json entry is an OCI image index listing each platform's manifest.

usage: smith image-index --output DIR --tag TAG --platform-layout linux/amd64=DIR ...

Each platform's manifest is copied as it is (byte for byte, so its digest is the one a
one-platform build of it has), listed in the order given with its `platform`; the image
index carries `org.opencontainers.image.ref.name` in index.json, as a one-platform image's
manifest does. Artifacts attached to a platform's manifest (SBOMs) stay in index.json.
"""
import argparse
import os
import re
import stat
from typing import Any, Dict, List, Tuple

from smith import safe_json
from smith.errors import SmithError
from smith import platforms as platforms
from smith.atomic import atomic_dir
from smith.oci.image import Blobs, canonical_json
from smith.oci.image_source import OCI_INDEX, OCI_MANIFEST, REF_NAME

_HEX = re.compile(r"\A[a-f0-9]{64}\Z")
MAX_PLATFORMS = 16


def _entries(layout: str, what: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """(the image's entry, the attachments' entries) of a one-platform layout's index.json."""
    index = safe_json.load_file(os.path.join(layout, "index.json"), "%s/index.json" % what)
    manifests = safe_json.field(index, "manifests", list, what + "/index.json")
    images = [m for m in manifests if isinstance(m, dict) and REF_NAME in (m.get("annotations") or {})]
    if len(images) != 1 or images[0].get("mediaType") != OCI_MANIFEST:
        raise SmithError("%s: index.json must hold exactly one tagged image manifest (a one-platform "
                         "`smith image` output)" % what)
    for m in manifests:
        digest = safe_json.field(m, "digest", str, what + "/index.json entry")
        if not digest.startswith("sha256:") or not _HEX.match(digest[7:]):
            raise SmithError("%s: index.json entry digest %r is not sha256:<64 hex>" % (what, digest[:80]))
    return images[0], [m for m in manifests if m is not images[0]]


def _copy_blobs(layout: str, blobs: Blobs, what: str) -> None:
    """Every blob of `layout`, each checked to hash to its name (no links, nothing else)."""
    src_dir = os.path.join(layout, "blobs", "sha256")
    for name in sorted(os.listdir(src_dir)):
        path = os.path.join(src_dir, name)
        if not _HEX.match(name):
            raise SmithError("%s: blobs/sha256/%s is not named by a sha256 digest" % (what, name[:80]))
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise SmithError("%s: blobs/sha256/%s is not a regular file" % (what, name))
            blobs.put_file(f, {"digest": "sha256:" + name, "size": st.st_size}, "%s blob %s" % (what, name))


def build_index(out: str, tag: str, layouts: List[Tuple[str, str]]) -> Dict[str, Any]:
    if not tag or any(c.isspace() for c in tag):
        raise SmithError("--tag %r: give a non-empty tag without spaces, e.g. latest" % tag)
    if not 1 < len(layouts) <= MAX_PLATFORMS:
        raise SmithError("give 2 to %d --platform-layout (one platform is a plain image)" % MAX_PLATFORMS)
    blobs = Blobs(out)
    manifests, attachments, seen = [], [], set()
    for name, layout in layouts:
        p = platforms.get(name, "--platform-layout")
        if p.name in seen:
            raise SmithError("--platform-layout lists %s twice" % p.name)
        seen.add(p.name)
        what = "--platform-layout %s=%s" % (name, layout)
        image, attached = _entries(layout, what)
        if image.get("platform") != p.oci():
            raise SmithError("%s: the image is for %s, not %s; build it with `smith image --platform %s`"
                             % (what, image.get("platform"), p.oci(), p.name))
        _copy_blobs(layout, blobs, what)
        manifests.append({"mediaType": OCI_MANIFEST, "digest": image["digest"], "size": image["size"],
                          "platform": p.oci()})
        attachments += attached
    index_desc = blobs.put_bytes(canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}), OCI_INDEX)
    entry = dict(index_desc, annotations={REF_NAME: tag})
    top = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] + attachments}
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(canonical_json(top))
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return entry


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith image-index", description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="OCI layout directory to write")
    p.add_argument("--tag", required=True, help="org.opencontainers.image.ref.name of the index")
    p.add_argument("--platform-layout", action="append", default=[], metavar="PLATFORM=DIR",
                   help="a one-platform `smith image` layout; repeat, in the index's order")
    args = p.parse_args(argv)
    layouts = []
    for spec in args.platform_layout:
        name, sep, layout = spec.partition("=")
        if not sep or not layout:
            raise SmithError("--platform-layout %r: expected PLATFORM=DIR, e.g. linux/arm64=arm64/img" % spec)
        layouts.append((name, layout))
    if os.path.lexists(args.output) and not (os.path.isdir(args.output) and not os.listdir(args.output)):
        raise SmithError("--output %s exists; remove it or pick another path" % args.output)
    with atomic_dir(args.output) as tmp:
        entry = build_index(tmp, args.tag, layouts)
    print(entry["digest"])
    return 0
