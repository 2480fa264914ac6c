"""`smith extract`: check a .deb/.rpm against its sha256 and write its files as a tree tar.

usage: smith extract --output TREE.tar --sha256 HEX [--size N] [--name NAME] PACKAGE_FILE
       smith extract --output TREE.tar --sha256 HEX [--size N] [--name NAME] --url URL [--cache-dir DIR]

With --url the package is downloaded here (through DIR, a directory of files named by their
sha256, when given), so one cacheable step both fetches and extracts: a machine with a warm
remote cache never downloads the package at all.

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
from smith.packages.fetch import check_digest, fetch_verified


def read_package(package_file: str, sha256: str, size) -> bytes:
    try:
        with open(package_file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SmithError("cannot read package file %s: %s" % (package_file, e.strerror))
    check_digest(data, "sha256", sha256, size, "package file %s" % package_file)
    return data


def extract(data: bytes, source: str, name, output: str) -> int:
    """Write the tree of the package DATA (checked already) read from SOURCE (file or URL)."""
    what = os.path.basename(source)
    if data.startswith(ar.MAGIC):
        reader = debfile
    elif data.startswith(rpmfile.LEAD_MAGIC):
        reader = rpmfile
    else:
        raise SmithError("%s is neither a .deb nor an .rpm" % source)
    if name is not None:
        actual = reader.package_name(data, what)
        if actual != name:
            raise SmithError("%s holds package %r, not %r; the lockfile and the downloaded file "
                             "disagree" % (source, actual, name))
    entries = tree.merge_usr(reader.entries(data, what), what)
    tree.write_tar(output, entries)
    return len(entries)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="smith extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="tree tar to write")
    parser.add_argument("--sha256", required=True, help="expected sha256 of the package file")
    parser.add_argument("--size", type=int, help="expected size in bytes")
    parser.add_argument("--name", help="expected package name")
    parser.add_argument("--url", help="download the package from URL instead of reading a file")
    parser.add_argument("--cache-dir", help="with --url: files named by sha256 to reuse and fill")
    parser.add_argument("package", nargs="?", help="the .deb or .rpm file")
    args = parser.parse_args(argv)
    if (args.url is None) == (args.package is None):
        parser.error("give either a PACKAGE_FILE or --url URL")
    if args.url:
        data = fetch_verified(args.url, args.sha256, args.size, args.cache_dir)
    else:
        data = read_package(args.package, args.sha256, args.size)
    extract(data, args.url or args.package, args.name, args.output)
    return 0
