"""`smith pull [--platform linux/amd64|all] [--ca FILE] [--verify-key PUBKEY]
REGISTRY/REPO@sha256:... LAYOUT_DIR`: pull one image (the platform's, if the digest names an index;
with --platform all, the whole index) into a new OCI layout; print the digest written.

With --verify-key, the digest must carry a cosign signature by that public key naming this digest
and this repository; it is checked before any layer is fetched, and nothing is written otherwise."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

from smith.errors import SmithError
from smith.atomic import write_file
from smith.registry.options import client_for, parser
from smith.registry.platforms import parse_platform
from smith.registry.pull import check_pinned, pull_all_platforms, pull_image
from smith.registry.reference import check_tag, parse_reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List


def main(argv: List[str]) -> int:
    p = parser("smith pull", __doc__.split("\n\n")[0])
    p.add_argument("--platform", default="linux/amd64", help="os/arch[/variant] to pick from an "
                   "index (default linux/amd64), or `all`: keep the whole index")
    p.add_argument("--allow-tag", action="store_true", help="accept a reference without a digest "
                   "(not reproducible: the tag can move)")
    p.add_argument("--ref-name", default="latest", help="org.opencontainers.image.ref.name of the "
                   "image in the written layout (default latest)")
    p.add_argument("--digest-file", metavar="F", help="write the pulled manifest digest to F")
    p.add_argument("--verify-key", metavar="PUBKEY", help="refuse the image unless it is signed "
                   "(cosign/sigstore format) by this public key")
    p.add_argument("source", metavar="REGISTRY/REPO@sha256:...")
    p.add_argument("layout", metavar="LAYOUT_DIR")
    args = p.parse_args(argv)
    ref = parse_reference(args.source)
    refusal = check_pinned(ref, args.allow_tag)
    if refusal:
        raise SmithError(refusal)
    platform = None if args.platform == "all" else parse_platform(args.platform)
    check_tag(args.ref_name, "--ref-name")
    verify = None
    if args.verify_key:  # imported only when asked: a plain pull starts sooner without them
        from smith.registry.signatures import verify_signed
        from smith.registry.signing import load_public_key
        public_key = load_public_key(args.verify_key)

        def verify(client, top_digest: str) -> None:
            verify_signed(client, ref.registry, ref.repository, top_digest, public_key,
                          args.verify_key, "%s/%s@%s" % (ref.registry, ref.repository,
                                                         top_digest))
    client = client_for(args, ref)
    if platform is None:
        digest = pull_all_platforms(client, ref, args.layout, args.ref_name, jobs=args.jobs,
                                    verify=verify)
    else:
        digest = pull_image(client, ref, platform, args.layout, args.ref_name, jobs=args.jobs,
                            verify=verify)
    client.locations.save()
    if args.digest_file:
        write_file(args.digest_file, digest + "\n")
    print(digest)
    return 0
