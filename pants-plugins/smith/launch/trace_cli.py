"""`smith trace --output TRACE.json --image LAYOUT -- launch service|test ...`: run a smith test
(the very `smith launch` command `pants test` runs) with every container of LAYOUT watched by
fanotify, and write the image paths its processes opened or executed (oci/trace.py), sorted.
A test that fails on the traced image is an error: its output says why."""
import sys
from typing import List, Optional

from smith.atomic import atomic_file
from smith.errors import SmithError
from smith.oci import trace
from smith.oci.layer_cli import ArgParser
from smith.registry.platforms import host_platform, parse_platform


def parser() -> ArgParser:
    p = ArgParser(prog="smith trace", description=__doc__, allow_abbrev=False)
    p.add_argument("--output", required=True, metavar="TRACE.json", help="the trace to write")
    p.add_argument("--image", required=True, metavar="LAYOUT",
                   help="the image whose containers are traced, as the test names it (a client "
                        "sidecar of another image is not traced)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="the platform of a multi-platform image to trace (default: the host's); "
                        "passed on to the launcher, which runs a foreign one through qemu; a "
                        "single-platform image must be this platform")
    p.add_argument("command", nargs="+", metavar="launch ...",
                   help="the test: `launch service --spec FILE ...` or `launch test ...`")
    return p


def launch_platform(image: str, wanted: Optional[str]) -> List[str]:
    """--platform for the traced launch command: the launcher alone would run every platform of
    an index and the trace would mix them; this traces the one being minimized. An image that
    lacks it is an error here (the launcher would skip it, and nothing would be traced)."""
    from smith.launch import each_platform
    from smith.oci.image_source import image_platforms, split_ref
    platform = parse_platform(wanted) if wanted else host_platform()
    have = image_platforms(*split_ref(image))
    if have == [None]:
        return []  # one image that names no platform: `smith minimize --platform` checks it
    chosen, lacking = each_platform.selected(image, [str(platform)])
    if lacking:
        raise SmithError("cannot trace %s: %s" % (image, lacking[0].split(": ", 1)[1]))
    return ["--platform", str(chosen[0])]


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
    command = command[:2] + launch_platform(args.image, args.platform) + command[2:]
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
