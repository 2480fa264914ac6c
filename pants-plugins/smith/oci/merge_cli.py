"""`smith merge`: tree tars -> one deterministic tree tar (sorted, mtime 0, uid/gid 0, modes
kept). The same path with different kind, mode, content or link target is an error."""
from typing import List

from smith.oci import layer, tree
from smith.oci.layer_cli import ArgParser


def parser() -> ArgParser:
    p = ArgParser(prog="smith merge", description=__doc__)
    p.add_argument("--output", required=True, metavar="TREE.tar", help="tree tar to write")
    p.add_argument("inputs", nargs="+", metavar="TREE.tar", help="tree tars to merge")
    return p


def merge_tree_tars(inputs: List[str], output: str) -> str:
    """Returns the sha256 of the written tar."""
    return layer.write_tree_tar_file(output, tree.merge(tree.read_tree_tar(t) for t in inputs))


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    merge_tree_tars(args.inputs, args.output)
    return 0
