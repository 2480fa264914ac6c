"""`crashcart`: side-load the debug toolbox into a running container and run a tool there.

usage: crashcart [--toolbox DIR] [--mount-only | --unmount] [--runtime-root DIR]
                 [--runc-root DIR] TARGET [-- CMD ...]

TARGET is a container id of smith-runtime (state in --runtime-root, default
/run/smith-runtime) or runc (--runc-root, default /run/runc), or a host PID. The toolbox
(--toolbox, default $CRASHCART_TOOLBOX or /var/lib/crashcart/toolbox) is attached read-only at
/dev/crashcart in the target's mount namespace; CMD (default: the toolbox's bash) runs in all
the target's namespaces and cgroups as its root, with PATH=/dev/crashcart/bin; signals are
forwarded to it; afterwards the toolbox is detached (unless it was already attached, or
--mount-only). --unmount detaches a toolbox left attached. Exit status: CMD's (128+N when a
signal N killed it), 0 for --mount-only/--unmount, 1 with `crashcart: error: ...` otherwise.
Standard library + ctypes only: this is the start path of the dist/crashcart zipapp.
"""
import argparse
import os
import sys
from typing import List

from smith.crashcart import attach, enter, target
from smith.errors import SmithError

DEFAULT_TOOLBOX = "/var/lib/crashcart/toolbox"
BIN = attach.MOUNT_POINT + "/bin"


def command_env(toolbox: str) -> dict:
    env = {"PATH": BIN, "HOME": "/", "TERM": os.environ.get("TERM", "dumb"),
           "LANG": "C.UTF-8", "PS1": r"crashcart \w# "}
    if os.path.isdir(os.path.join(toolbox, "share", "terminfo")):
        env["TERMINFO"] = attach.MOUNT_POINT + "/share/terminfo"
    lib = os.path.join(toolbox, "lib")
    if os.path.isdir(lib) and any(n.startswith("python3.") for n in os.listdir(lib)):
        env["PYTHONHOME"] = attach.MOUNT_POINT  # gdb's embedded Python: its stdlib is in lib/
    return env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crashcart", description=__doc__.split("\n\n")[0],
                                usage="crashcart [options] TARGET [-- CMD ...]")
    p.add_argument("--toolbox", default=os.environ.get("CRASHCART_TOOLBOX") or DEFAULT_TOOLBOX,
                   help="toolbox directory (default: $CRASHCART_TOOLBOX or %s)" % DEFAULT_TOOLBOX)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--mount-only", action="store_true", help="attach the toolbox and leave it")
    mode.add_argument("--unmount", action="store_true", help="detach a toolbox left attached")
    p.add_argument("--runtime-root", default=target.SMITH_ROOT, help="smith-runtime state root")
    p.add_argument("--runc-root", default=target.RUNC_ROOT, help="runc state root")
    p.add_argument("target", help="container id or host PID")
    return p


def main(argv: List[str]) -> int:
    argv = list(argv)
    cmd: List[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, cmd = argv[:cut], argv[cut + 1:]
    parser = _parser()
    args = parser.parse_args(argv)
    if cmd and (args.mount_only or args.unmount):
        parser.error("a command cannot be given with --mount-only or --unmount")
    if os.geteuid() != 0:
        raise SmithError("crashcart must run as root: it mounts into and enters another process's "
                         "namespaces; run it with sudo")
    tgt = target.find_target(args.target, args.runtime_root, args.runc_root)
    if args.unmount:
        if not attach.attached_at(tgt.pid, args.toolbox):
            raise SmithError("no toolbox is attached at %s (or elsewhere) in %s"
                             % (attach.MOUNT_POINT, tgt.what))
        attach.detach(tgt.pid, tgt.what, args.toolbox)
        return 0
    toolbox = attach.check_toolbox(args.toolbox)
    left = attach.mounted(tgt.pid)
    if not left:
        attach.attach(tgt.pid, tgt.what, toolbox)
    if args.mount_only:
        print("toolbox attached at %s in %s; `crashcart --unmount %s` detaches it"
              % (attach.MOUNT_POINT, tgt.what, args.target), file=sys.stderr)
        return 0
    try:
        return enter.run(tgt.pid, tgt.what, cmd or [BIN + "/bash"], command_env(toolbox))
    finally:
        if not left and attach.mounted(tgt.pid):
            attach.detach(tgt.pid, tgt.what)
