"""`smith extract`: check a .deb/.rpm against its sha256 and write its files as a tree tar.

usage: smith extract --output TREE.tar --sha256 HEX [--size N] [--name NAME] PACKAGE_FILE

The kind (deb or rpm) is read from the file's magic bytes. The sha256 (and size) are
checked before anything is read from the package; --name, if given, must equal the
package's own name (Package: of a deb, NAME of an rpm). No maintainer scripts run.
TREE.tar is written atomically; see smith.packages.tree for its layout (merged /usr,
sorted, mtime 0, uid/gid 0, modes kept). Exit 0, or 1 with `smith extract: error: ...`.
"""
import argparse
import os
from typing import List

from smith.errors import SmithError
from smith.packages import ar, debfile, rpmfile, tree
from smith.packages.fetch import check_digest


def extract(package_file: str, sha256: str, size, name, output: str) -> int:
    what = os.path.basename(package_file)
    try:
        with open(package_file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SmithError("cannot read package file %s: %s" % (package_file, e.strerror))
    check_digest(data, "sha256", sha256, size, "package file %s" % package_file)
    if data.startswith(ar.MAGIC):
        reader = debfile
    elif data.startswith(rpmfile.LEAD_MAGIC):
        reader = rpmfile
    else:
        raise SmithError("%s is neither a .deb nor an .rpm" % package_file)
    if name is not None:
        actual = reader.package_name(data, what)
        if actual != name:
            raise SmithError("%s holds package %r, not %r; the lockfile and the downloaded file "
                             "disagree" % (package_file, actual, name))
    entries = tree.merge_usr(reader.entries(data, what), what)
    tree.write_tar(output, entries)
    return len(entries)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="smith extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="tree tar to write")
    parser.add_argument("--sha256", required=True, help="expected sha256 of the package file")
    parser.add_argument("--size", type=int, help="expected size in bytes")
    parser.add_argument("--name", help="expected package name")
    parser.add_argument("package", help="the .deb or .rpm file")
    args = parser.parse_args(argv)
    extract(args.package, args.sha256, args.size, args.name, args.output)
    return 0
