"""`python3 -m smith.launch run|test|service|structure|prune ...`: run images in containers (see run_cli,
smoketest_cli, service_cli, structure_cli), and drop unused layers from the store (prune_cli)."""
import importlib
import sys
from typing import List, Optional

from smith.errors import SmithError, for_terminal

COMMANDS = {
    "run": "smith.launch.run_cli",
    "test": "smith.launch.smoketest_cli",
    "service": "smith.launch.service_cli",
    "structure": "smith.launch.structure_cli",
    "prune": "smith.launch.prune_cli",
}
USAGE = ("usage: smith-launch {run|test} --layout IMAGE[:TAG] [--platform P] [OPTIONS] [-- ARGS...]\n"
         "       smith-launch service --spec FILE [--store DIR] [--runtime PATH] [--platform P]\n"
         "       smith-launch structure --spec FILE [--platform P]\n"
         "       smith-launch prune [--store DIR]")


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] in ("-h", "--help"):
            print(USAGE)
            return 0
        print("smith-launch: error: expected a command: run, test, service, structure or prune\n" + USAGE, file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]])
    try:
        return int(module.main(argv[1:]) or 0)
    except SmithError as e:
        print("smith launch %s: error: %s" % (argv[0], for_terminal(e)), file=sys.stderr)
        return 1
