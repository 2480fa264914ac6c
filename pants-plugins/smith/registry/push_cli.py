"""`smith push [--tag T]... [--ca FILE] [--insecure] [--digest-file F] LAYOUT_DIR[:REF]
REGISTRY/REPO[:TAG]`: push the layout's REF (default `latest`, or its only image) and the
artifacts whose subject it is (e.g. an SBOM); print the pushed manifest digest."""
import sys
from typing import Dict, List

from smith.errors import SmithError
from smith.registry.options import client_for, parser, write_atomically
from smith.registry.push import push_layout
from smith.registry.reference import check_tag, parse_layout_arg, parse_reference


def main(argv: List[str]) -> int:
    p = parser("smith push", __doc__.split("\n\n")[0])
    p.add_argument("--tag", action="append", default=[], metavar="T",
                   help="also tag the pushed image T (repeatable)")
    p.add_argument("--digest-file", metavar="F", help="write the pushed digest to F")
    p.add_argument("--mount-from", metavar="REPO", help="try to mount blobs from this repository "
                   "of the same registry instead of uploading them")
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
    client = client_for(args, dest)
    stats: Dict[str, int] = {}
    digest = push_layout(client, layout, ref, dest.repository, tags, args.mount_from, stats)
    print("smith push: %s/%s: %d blobs uploaded, %d already there, %d mounted; tags: %s" % (
        dest.registry, dest.repository, stats["uploaded"], stats["exists"], stats["mounted"],
        ", ".join(tags) or "(none, pushed by digest)"), file=sys.stderr)
    if args.digest_file:
        write_atomically(args.digest_file, digest + "\n")
    print(digest)
    return 0
