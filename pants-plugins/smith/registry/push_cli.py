"""`smith push [--tag T]... [--ca FILE] [--insecure] [--digest-file F] [--sign-key KEY]
[--provenance PARAMS.json] LAYOUT_DIR[:REF] REGISTRY/REPO[:TAG]`: push the layout's REF (default
`latest`, or its only image) and the artifacts whose subject it is (e.g. an SBOM); print the pushed
manifest digest.

With --sign-key (a cosign/sigstore encrypted private key, its passphrase in
$SMITH_SIGNING_PASSWORD), the pushed digest is signed the way cosign does (the `sha256-HEX.sig`
tag), once per tag; with --provenance, an SLSA provenance statement is pushed as a signed OCI 1.1
referrer of the image (see smith.registry.provenance)."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import sys

from smith.errors import SmithError
from smith.atomic import write_file
from smith.registry.options import client_for, parser
from smith.registry.push import push_layout
from smith.registry.reference import check_tag, parse_layout_arg, parse_reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List


def platform_manifests(layout: str, digest: str) -> List[str]:
    """The manifests an index lists, each signed too (as `cosign sign --recursive` does): a client
    that copies one platform out of an index, such as skopeo or podman pulling by tag, checks the
    signature of that platform's manifest, not of the index."""
    from smith.registry import media_types
    from smith.registry.descriptors import check_index
    from smith.registry.layout import read_json_blob
    _, doc = read_json_blob(layout, digest)
    if doc.get("mediaType") not in media_types.INDEXES and "manifests" not in doc:
        return []
    index = check_index(doc, "%s: index %s" % (layout, digest))
    return list(dict.fromkeys(child["digest"] for child in index["manifests"]
                              if child.get("mediaType") in media_types.IMAGE_MANIFESTS))


def main(argv: List[str]) -> int:
    p = parser("smith push", __doc__.split("\n\n")[0])
    p.add_argument("--tag", action="append", default=[], metavar="T",
                   help="also tag the pushed image T (repeatable)")
    p.add_argument("--digest-file", metavar="F", help="write the pushed digest to F")
    p.add_argument("--mount-from", metavar="REPO", help="try to mount blobs from this repository "
                   "of the same registry instead of uploading them")
    p.add_argument("--sign-key", metavar="KEY", help="sign the pushed digest with this cosign/"
                   "sigstore private key (passphrase from $SMITH_SIGNING_PASSWORD)")
    p.add_argument("--provenance", metavar="PARAMS_JSON", help="push an SLSA v1 provenance "
                   "statement built from these build parameters (needs --sign-key)")
    p.add_argument("--source-repo", metavar="DIR", help="with --provenance: record the git "
                   "commit checked out in DIR among the resolved dependencies")
    p.add_argument("layout", metavar="LAYOUT_DIR[:REF]")
    p.add_argument("destination", metavar="REGISTRY/REPO[:TAG]")
    args = p.parse_args(argv)
    layout, ref = parse_layout_arg(args.layout)
    dest = parse_reference(args.destination)
    if dest.digest:
        raise SmithError("destination %s: push to a tag or a bare repository, not a digest "
                         "(the digest is computed from the layout)" % args.destination)
    tags = ([dest.tag] if dest.tag else []) + [check_tag(t, "--tag") for t in args.tag]
    tags = list(dict.fromkeys(tags))
    key = None
    if args.provenance and not args.sign_key:
        raise SmithError("--provenance %s: provenance is pushed signed; add --sign-key KEY"
                         % args.provenance)
    if args.sign_key:  # before anything is pushed: a wrong passphrase fails fast
        # imported only when signing: a plain push starts sooner without it
        from smith.registry.signing import load_private_key, password_from_env
        key = load_private_key(args.sign_key, password_from_env())
    build = None
    if args.provenance:  # imported only when asked: a plain push starts sooner without them
        from smith.registry.provenance import git_source, load_build_parameters
        build = load_build_parameters(args.provenance)
    if build is not None and args.source_repo:
        source = git_source(args.source_repo)
        if source is None:
            print("smith push: %s is not a git checkout with a commit; the provenance names no "
                  "commit" % args.source_repo, file=sys.stderr)
        else:
            build.setdefault("resolvedDependencies", []).insert(0, source)
    client = client_for(args, dest)
    stats: Dict[str, int] = {}
    digest = push_layout(client, layout, ref, dest.repository, tags, args.mount_from, stats,
                         jobs=args.jobs)
    client.locations.save()
    if key is not None:
        from smith.registry.signatures import sign_and_attach
        from smith.registry.signing import fingerprint
        where = "%s/%s" % (dest.registry, dest.repository)
        identities = ["%s:%s" % (where, t) for t in tags] or [where]
        for signed in [digest] + platform_manifests(layout, digest):
            added = sign_and_attach(client, dest.registry, dest.repository, signed, key, identities)
            print("smith push: %s@%s: %d signature(s) added (%s), key %s" % (
                where, signed, added, ", ".join(identities), fingerprint(key.public_key())),
                file=sys.stderr)
    if build is not None:
        from smith.registry.provenance import push_provenance
        artifact = push_provenance(client, layout, ref, dest, digest, build, key)
        print("smith push: %s: SLSA provenance %s (signed)" % (where, artifact), file=sys.stderr)
    print("smith push: %s/%s: %d blobs uploaded, %d already there, %d mounted; tags: %s" % (
        dest.registry, dest.repository, stats["uploaded"], stats["exists"], stats["mounted"],
        ", ".join(tags) or "(none, pushed by digest)"), file=sys.stderr)
    if args.digest_file:
        write_file(args.digest_file, digest + "\n")
    print(digest)
    return 0
