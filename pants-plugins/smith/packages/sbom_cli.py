"""`smith sbom`: write an SPDX 2.3 JSON SBOM for an image built from locked packages.

usage: smith sbom --output SBOM.json --lock LOCK.json --layer LAYER.tar[.gz]...
                  [--package NAME=PKG_TREE.tar]... [--name IMAGE_NAME]

The --layer tars (bottom first) are stacked as a runtime would, whiteouts included; the
regular files of the result are listed with SHA1 and SHA256. Each --package gives the tree tar `smith extract` wrote for a locked package; a file
of the image with the same path and content is attributed to that package. Every locked
package is listed (name, version, architecture, sha256, URL, purl). `created` comes from
SOURCE_DATE_EPOCH (default 0), so the output is reproducible. Written atomically.
"""
import argparse
import json
import os
from typing import Dict, List

from smith.errors import SmithError
from smith.atomic import write_file
from smith.packages import lockfile
from smith.packages.sbom import build
from smith.untar import Limits


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="smith sbom", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--lock", required=True)
    parser.add_argument("--layer", action="append", required=True, metavar="LAYER.tar",
                        help="a layer of the image, bottom first (repeat)")
    parser.add_argument("--package", action="append", default=[], metavar="NAME=TREE.tar")
    parser.add_argument("--name", default="image")
    parser.add_argument("--architecture", help="the image's architecture (deb amd64, arm64...): only its "
                        "pins and the shared ones it uses; needed for a lock of several architectures")
    Limits.add_arguments(parser)
    args = parser.parse_args(argv)
    trees: Dict[str, str] = {}
    for item in args.package:
        name, sep, tree = item.partition("=")
        if not sep or not name or not tree:
            raise SmithError("--package %r must be NAME=TREE.tar" % item)
        trees[name] = tree
    epoch_text = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not epoch_text.isdigit():
        raise SmithError("SOURCE_DATE_EPOCH must be a number of seconds, not %r" % epoch_text)
    doc = build(args.name, lockfile.read(args.lock), trees, args.layer, int(epoch_text),
                Limits.from_args(args), args.architecture)
    write_file(args.output, json.dumps(doc, sort_keys=True, indent=2) + "\n", parents=False)
    return 0
