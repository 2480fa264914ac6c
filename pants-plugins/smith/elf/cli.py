"""`smith closure`: print (and optionally tar) the files a program needs to run inside a root.

smith closure --root ROOT_DIR [--root-tar TREE.tar] PATH... [--env K=V]... [--nss]
              [--user NAME:UID:GID] [--extra-lib GLOB]... [--output-tar OUT.tar]

Prints every entry (absolute path inside the root; files and symlinks, including symlinked
parent dirs) one per line, sorted, control characters escaped (smith.text.printable). With --root-tar the root is unpacked from a tree tar into a
temp dir under the cwd (which then replaces --root; --root may be left out) and removed afterwards. The files that --nss
generates (/etc/passwd, /etc/group, /etc/nsswitch.conf) are not in the root, so they are not
printed; they are written to --output-tar only.
"""
import argparse
import os
from typing import Dict, List

from smith.elf.closure import compute_closure
from smith.elf.nss import DEFAULT_USER, nss_files, parse_user
from smith.elf.treetar import remove_tree, unpack_root_tar, write_tree_tar
from smith.errors import SmithError
from smith.text import PATH_MAX, printable
from smith.untar import Limits


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SmithError(message + "\n" + self.format_usage().strip())


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="smith closure", description="Print the ELF closure of programs inside a root.",
                allow_abbrev=False)
    p.add_argument("paths", nargs="+", metavar="PATH", help="program paths inside the root (or names on PATH)")
    p.add_argument("--root", help="the root directory the programs live in")
    p.add_argument("--root-tar", help="an uncompressed tree tar holding the root instead of --root")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="image environment (PATH, LD_LIBRARY_PATH) used by the loader")
    p.add_argument("--nss", action="store_true", help="add NSS modules and generate passwd/group/nsswitch.conf")
    p.add_argument("--user", help="NAME:UID:GID of the image user for --nss (default smith:10:10)")
    p.add_argument("--extra-lib", action="append", default=[], metavar="GLOB",
                   help="files the program dlopens (globs inside the root); traced like libraries")
    p.add_argument("--keep", action="append", default=[], metavar="GLOB",
                   help="files or directories (globs inside the root) kept as they are, e.g. data files")
    p.add_argument("--platform", help="the image's platform (e.g. linux/arm64): every ELF file must be "
                   "of its machine; default: of the first program's")
    p.add_argument("--output-tar", help="also write a deterministic tree tar of the closure here")
    Limits.add_arguments(p)
    return p


def _env(pairs: List[str]) -> Dict[str, str]:
    env = {}
    for kv in pairs:
        if "=" not in kv or kv.startswith("="):
            raise SmithError("--env %r must be NAME=VALUE" % kv)
        k, v = kv.split("=", 1)
        env[k] = v
    return env


def main(argv: List[str]) -> int:
    args = _parser().parse_intermixed_args(argv)
    if not args.root and not args.root_tar:
        raise SmithError("give the root: --root ROOT_DIR or --root-tar TREE.tar")
    if args.user and not args.nss:
        raise SmithError("--user only makes sense with --nss")
    user = parse_user(args.user) if args.user else DEFAULT_USER
    env = _env(args.env)
    root = args.root
    if root is not None and not args.root_tar and not os.path.isdir(root):
        raise SmithError("--root %s is not a directory" % root)
    unpacked = None
    if args.root_tar:
        if not os.path.isfile(args.root_tar):
            raise SmithError("--root-tar %s does not exist" % args.root_tar)
        unpacked = root = unpack_root_tar(args.root_tar, os.getcwd(), Limits.from_args(args))
    try:
        result = compute_closure(root, args.paths, env=env, nss=args.nss, extra_libs=args.extra_lib, keep=args.keep,
                                platform=args.platform)
        if args.output_tar:
            generated = nss_files(user) if args.nss else {}
            write_tree_tar(args.output_tar, root, result.paths, generated)
    finally:
        if unpacked:
            remove_tree(unpacked)
    for p in result.paths:
        print(printable(p, PATH_MAX))  # an image's names, one line each, no terminal escapes
    return 0
