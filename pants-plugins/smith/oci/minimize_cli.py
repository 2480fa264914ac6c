"""`smith minimize`: cut an existing image (OCI layout dir/tar[:TAG] or docker archive) down
to one program's files; writes a tree tar and the config the minimized image keeps."""
import json
from typing import List

from smith.elf.nss import parse_user
from smith.errors import SmithError
from smith.oci import minimize, trace
from smith.atomic import atomic_file
from smith.oci.layer_cli import ArgParser
from smith.registry.platforms import parse_platform
from smith.untar import Limits


def parser() -> ArgParser:
    p = ArgParser(prog="smith minimize", description=__doc__, allow_abbrev=False)
    p.add_argument("--output", required=True, metavar="TREE.tar", help="tree tar to write")
    p.add_argument("--config-out", metavar="CONFIG.json",
                   help="write the kept config (entrypoint, cmd, env, workdir, labels, "
                        "exposed_ports) here, in `smith image --config` form")
    p.add_argument("--entrypoint", action="append", metavar="ARG",
                   help="new Entrypoint, one argument per flag (default: the image's own); "
                        "its first argument is the program kept")
    p.add_argument("--cmd", action="append", metavar="ARG",
                   help="new Cmd, one argument per flag (default: the image's own)")
    p.add_argument("--path", action="append", default=[], metavar="GLOB",
                   help="also keep what this absolute glob matches (dirs whole)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="drop paths matching this fnmatch glob (and everything below them)")
    p.add_argument("--nss", action="store_true",
                   help="add NSS modules and minimal /etc/passwd, /etc/group, /etc/nsswitch.conf")
    p.add_argument("--user", metavar="NAME:UID:GID",
                   help="the user written by --nss (default smith:10:10)")
    p.add_argument("--trace", action="append", default=[], metavar="TRACE.json",
                   help="also keep what this trace of `smith trace` holds, with the ELF closures "
                        "of its programs and libraries and the symlinks leading to it")
    p.add_argument("--python-sourceless", action="append", default=[], metavar="GLOB",
                   help="under this fnmatch glob, a kept unchecked-hash D/__pycache__/N.TAG.pyc "
                        "is written as D/N.pyc and D/N.py is dropped (tracebacks lose source lines)")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="set/override an Env entry (also used to find the program)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="the platform to take from a multi-platform source (default: the host's; "
                        "a single-platform source must be this platform when given)")
    p.add_argument("source", help="OCI layout directory or tar (optionally PATH:TAG), or a "
                                  "docker-archive tar")
    Limits.add_arguments(p)
    return p


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    user = parse_user(args.user) if args.user else None
    if user is not None and not args.nss:
        raise SmithError("--user only makes sense with --nss")
    env = minimize.env_dict(args.env, "--env")
    cfg = minimize.minimize(args.source, args.output, entrypoint=args.entrypoint, cmd=args.cmd,
                            paths=args.path, excludes=args.exclude, nss=args.nss, user=user,
                            env=env, limits=Limits.from_args(args),
                            traces=[trace.load_trace(t) for t in args.trace],
                            platform=parse_platform(args.platform) if args.platform else None,
                            python_sourceless=args.python_sourceless)
    if args.config_out:
        with atomic_file(args.config_out) as f:
            f.write(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return 0
