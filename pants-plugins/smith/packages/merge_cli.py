"""`smith merge-packages`: merge the tree tars of packages that share one root.

    smith merge-packages --output TREE.tar NAME=PKG_TREE.tar...

First every path two packages both ship must agree (`check_overlaps`: a conflict names both
packages), then the trees are merged like `smith merge` does.
"""
import argparse
from typing import List

from smith.errors import SmithError
from smith.oci.merge_cli import merge_tree_tars
from smith.packages.tree import check_overlaps


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith merge-packages", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, metavar="TREE.tar")
    p.add_argument("trees", nargs="+", metavar="NAME=PKG_TREE.tar")
    args = p.parse_args(argv)
    pairs = [t.split("=", 1) for t in args.trees]
    bad = [t for t, pair in zip(args.trees, pairs) if len(pair) != 2]
    if bad:
        raise SmithError("expected NAME=PKG_TREE.tar, got %s" % ", ".join(bad))
    check_overlaps(dict(pairs))
    merge_tree_tars([path for _, path in pairs], args.output)
    return 0
