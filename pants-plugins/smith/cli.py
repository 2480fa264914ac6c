"""`smith` command line: one subcommand per concern, each in its own module.

Every subcommand module exposes `main(argv: list[str]) -> int`. Modules are imported
lazily so that `smith closure` never pays for importing the registry client, etc.
"""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import importlib
import sys

from smith.errors import SmithError, for_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

COMMANDS = {
    "layer": ("smith.oci.layer_cli", "write a deterministic layer from files, dirs and tree tars"),
    "image": ("smith.oci.image_cli", "assemble layers + config into an OCI image layout"),
    "image-index": ("smith.oci.image_index", "join one-platform image layouts into a multi-platform one"),
    "unpack": ("smith.oci.unpack_cli", "safely unpack an OCI layout / docker archive into a tree"),
    "merge": ("smith.oci.merge_cli", "merge tree tars into one deterministic tree tar"),
    "merge-packages": ("smith.packages.merge_cli", "merge package trees, naming packages that conflict"),
    "minimize": ("smith.oci.minimize_cli", "cut an existing image down to one program"),
    "trace": ("smith.launch.trace_cli", "record the image files a smith test's containers use (fanotify)"),
    "launch": ("smith.launch.cli", "run, test or prune images in containers (layer store, user ns)"),
    "closure": ("smith.elf.cli", "print the ELF closure of a program inside a root"),
    "lock": ("smith.packages.lock_cli", "resolve packages from a repository into a lockfile"),
    "extract": ("smith.packages.extract_cli", "extract a .deb/.rpm into a tree tar"),
    "outdated": ("smith.packages.outdated_cli", "report pins that have newer versions"),
    "sbom": ("smith.packages.sbom_cli", "write an SPDX 2.3 SBOM for an image"),
    "push": ("smith.registry.push_cli", "push an OCI layout to a registry"),
    "pull": ("smith.registry.pull_cli", "pull an image by digest into an OCI layout"),
    "keygen": ("smith.registry.keygen_cli", "write a cosign/sigstore signing key pair"),
    "toolbox": ("smith.crashcart.toolbox", "build a crashcart debug toolbox from package trees"),
    "pyc": ("smith.bytecode.compile_cli", "compile a layer's .py files to .pyc with the image's python"),
    "zipapp": ("smith.zipapp_cli", "pack Python sources into a deterministic executable zipapp"),
}


# Commands a CI job runs many times, each a few tens of ms, where start and exit matter. Their
# files are closed (and renamed into place) and their threads joined before they return, and
# nothing of theirs runs at exit (no atexit, no __del__ with work to do), so the process ends
# without the interpreter's teardown: 13M of a small mounting re-push's 97M instructions, and
# the tail after the digest is printed (4.7 ms quiet, 15 ms under load).
QUICK_EXIT = ("push", "pull")


def usage() -> str:
    lines = ["usage: smith COMMAND [ARGS...]", "", "commands:"]
    for name, (_, text) in sorted(COMMANDS.items()):
        lines.append("  %-10s %s" % (name, text))
    return "\n".join(lines)


def run() -> None:
    """`python -m smith`: main(), then the exit (quick for QUICK_EXIT commands)."""
    code = main(quick_exit=True)
    sys.exit(code)


def main(argv: Optional[List[str]] = None, quick_exit: bool = False) -> int:
    """With quick_exit (a process of its own: `python -m smith`), a QUICK_EXIT command that
    returns ends the process itself, without the interpreter's teardown."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print("smith: error: unknown command %r\n\n%s" % (name, usage()), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    quick = quick_exit and name in QUICK_EXIT
    if quick:
        import gc
        gc.freeze()  # the import-time objects live until the end: never scanned again
    try:
        code = int(module.main(rest) or 0)
    except SmithError as e:
        print("smith %s: error: %s" % (name, for_terminal(e)), file=sys.stderr)
        code = 1
    if quick:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: what teardown would have ignored too
                code = code or 1
        import posix
        posix._exit(code)
    return code


if __name__ == "__main__":
    run()
