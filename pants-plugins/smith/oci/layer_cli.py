"""`smith layer`: files, directories and tree tars -> DIR/layer.tar.gz + DIR/layer.json."""
import argparse
import json
from typing import List

from smith.errors import SmithError
from smith.oci import layer, tree


class ArgParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so errors print as `smith CMD: error: ...`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SmithError("%s (see --help)" % message)


def parser() -> ArgParser:
    p = ArgParser(prog="smith layer", description=__doc__)
    p.add_argument("--output", required=True, help="directory to write layer.tar.gz/layer.json")
    p.add_argument("--uid", type=int, default=10, help="owner of every entry (default 10)")
    p.add_argument("--gid", type=int, default=10, help="group of every entry (default 10)")
    p.add_argument("--mtime", type=int, default=None,
                   help="mtime of every entry (default $SOURCE_DATE_EPOCH, else 0)")
    p.add_argument("--keep-special", action="store_true",
                   help="keep setuid/setgid/sticky bits (dropped by default)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="fnmatch glob on the image path; a matching directory drops its content")
    p.add_argument("--dir", action="append", default=[], metavar="IMAGEPATH=HOSTDIR",
                   help="put HOSTDIR's content (or a single file) at IMAGEPATH")
    p.add_argument("--tar", action="append", default=[], metavar="TREE.tar",
                   help="an uncompressed tree tar to add at the image root")
    p.add_argument("--compression", choices=sorted(layer.COMPRESSIONS), default="gzip",
                   help="gzip (layer.tar.gz, the default) or zstd (layer.tar.zst)")
    p.add_argument("--delete", action="append", default=[], metavar="IMAGEPATH",
                   help="whiteout of a base-image path; PATH/* hides a directory's content")
    return p


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    sources = []
    for spec in args.dir:
        image_path, sep, host = spec.partition("=")
        if not sep or not host:
            raise SmithError("--dir %r: expected IMAGEPATH=HOSTDIR, e.g. --dir /=rootfs" % spec)
        sources.append(tree.read_dir(host, tree.clean_image_path(image_path, "--dir")))
    for t in args.tar:
        sources.append(tree.read_tree_tar(t))
    entries = tree.Excluder(args.exclude).filter(tree.merge(sources))
    deleted = [tree.clean_image_path(d, "--delete") for d in args.delete]
    entries += layer.whiteouts(deleted)
    records = layer.plan(entries, normalise=True, keep_special=args.keep_special,
                         deleted=[d for d in deleted if not d.endswith("*")])
    mtime = layer.default_mtime() if args.mtime is None else args.mtime
    desc = layer.write_layer_dir(records, args.output, args.uid, args.gid, mtime,
                                 args.compression)
    print(json.dumps(desc, sort_keys=True, separators=(",", ":")))
    return 0
