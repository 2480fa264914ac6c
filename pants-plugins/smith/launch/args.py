"""Command-line options shared by `run` and `test`, and their translation into settings."""
import argparse
import signal
from typing import List, Optional, Tuple

from smith.launch import bundle, container
from smith.launch.container import Settings
from smith.oci.image_source import Image, open_image
from smith.registry.platforms import Platform


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    p.add_argument("--layout", required=True, metavar="IMAGE[:TAG]",
                   help="OCI image layout (directory or tar) or docker archive, optionally with "
                        "the tag to run")
    p.add_argument("--runtime", default="runc", metavar="PATH",
                   help="OCI runtime with runc's CLI (default: runc on PATH)")
    p.add_argument("--store", default="/var/lib/smith", metavar="DIR",
                   help="shared store: layers/ (unpacked once per diff_id), c/ (containers), "
                        "ids.json (id pool); default /var/lib/smith")
    p.add_argument("--read", metavar="DIR", help="host directory mounted read-only at /read")
    p.add_argument("--write", metavar="DIR",
                   help="host directory mounted at /write and kept (default: a fresh one, removed)")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="extra environment (overrides the image's); repeatable")
    p.add_argument("--network", choices=("none", "host"), default="none",
                   help="none: own network namespace with only lo (default); host: the host's")
    p.add_argument("--timeout", type=float, metavar="S", help="kill the container after S seconds (exit code 124); `test` defaults to 30")
    p.add_argument("--writable-root", action="store_true",
                   help="give the root an overlay upper dir (default: read-only root)")
    p.add_argument("--whole-command", action="store_true",
                   help="the arguments after -- replace Entrypoint as well as Cmd")
    p.add_argument("--id-base", type=int, default=100000, metavar="N",
                   help="first host uid/gid of the pool (default 100000)")
    p.add_argument("--ids-per-container", type=int, default=65536, metavar="N",
                   help="host uids/gids per container (default 65536)")
    p.add_argument("--max-containers", type=int, default=4096, metavar="N",
                   help="ranges in the pool (default 4096)")
    p.add_argument("-v", "--verbose", action="store_true", help="say what the launcher does, on stderr")
    p.add_argument("command", nargs="*", metavar="-- ARGS",
                   help="arguments replacing the image's Cmd (or its whole command)")
    return p


def split_command(argv: List[str]) -> Tuple[List[str], List[str]]:
    """Everything after the first `--` is the container's, never an option of ours."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def parse(p: argparse.ArgumentParser, argv: List[str]) -> argparse.Namespace:
    ours, command = split_command(argv)
    ns = p.parse_args(ours)
    if ns.command:
        p.error("unexpected arguments %s: put the container's command after --" % ns.command)
    ns.command = command
    if ns.timeout is not None and ns.timeout <= 0:
        p.error("--timeout must be a positive number of seconds")
    if ns.whole_command and not ns.command:
        p.error("--whole-command needs the command after --")
    return ns


def load(ns: argparse.Namespace, tty: bool,
         platform: Optional[Platform] = None) -> Tuple[Image, bundle.Options, Settings]:
    container.require_root()  # before anything else: the first thing a user must fix
    image = open_image(ns.layout, platform=platform)
    opts = bundle.Options(args=ns.command, whole_command=ns.whole_command, env=ns.env,
                          read_dir=ns.read, network=ns.network, writable_root=ns.writable_root, tty=tty)
    settings = Settings(store=ns.store, runtime=ns.runtime, id_base=ns.id_base,
                        id_size=ns.ids_per_container, id_count=ns.max_containers, verbose=ns.verbose)
    return image, opts, settings


def exit_on_sigterm() -> None:
    """SIGTERM (e.g. Pants cancelling) unwinds like an exception, so cleanup still runs."""
    def handler(signum: int, _frame: Optional[object]) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
