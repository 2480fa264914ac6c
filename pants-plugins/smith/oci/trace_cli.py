"""`smith trace --output TRACE.json --image LAYOUT -- launch service|test ...`: run a smith test
(the very `smith launch` command `pants test` runs) with every container of LAYOUT watched by
fanotify, and write the image paths its processes opened or executed (oci/trace.py), sorted.
A test that fails on the traced image is an error: its output says why."""
import sys
from typing import List

from smith.errors import SmithError
from smith.oci import trace
from smith.oci.atomic import atomic_file
from smith.oci.layer_cli import ArgParser


def parser() -> ArgParser:
    p = ArgParser(prog="smith trace", description=__doc__, allow_abbrev=False)
    p.add_argument("--output", required=True, metavar="TRACE.json", help="the trace to write")
    p.add_argument("--image", required=True, metavar="LAYOUT",
                   help="the image whose containers are traced, as the test names it (a client "
                        "sidecar of another image is not traced)")
    p.add_argument("command", nargs="+", metavar="launch ...",
                   help="the test: `launch service --spec FILE ...` or `launch test ...`")
    return p


def main(argv: List[str]) -> int:
    if "--" not in argv:
        if "-h" in argv or "--help" in argv:
            parser().print_help()
            return 0
        raise SmithError("give the test after `--`: smith trace --output T --image L -- launch ...")
    split = argv.index("--")
    args = parser().parse_args(argv[:split] + ["--", *argv[split + 1:]])
    command = args.command
    if command[0] != "launch" or len(command) < 2 or command[1] not in ("service", "test"):
        raise SmithError("the traced command must be `launch service ...` or `launch test ...`, "
                         "not %r" % " ".join(command[:2]))
    from smith.launch import cli as launch_cli, container
    recorder = trace.Recorder(args.image)
    container.ROOT_WATCHERS.append(recorder.watch)
    try:
        code = launch_cli.main(command[1:])
    finally:
        container.ROOT_WATCHERS.remove(recorder.watch)
        found = recorder.stop()
    sys.stdout.flush()
    if code != 0:
        raise SmithError("the test failed on the traced image %s (output above): a trace is taken "
                         "from a passing run only" % args.image)
    if not recorder.roots:
        raise SmithError("no container of %s was started: nothing was traced" % args.image)
    with atomic_file(args.output) as f:
        f.write(found.to_json())
    print("smith trace: %d paths (%d executed) of %s" % (len(found.paths), len(found.executed), args.image))
    return 0
