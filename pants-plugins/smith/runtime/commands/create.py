"""create [--bundle B] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] ID"""

from smith.runtime import options as o

SPEC = {"--bundle": ("bundle", o.VALUE), "-b": ("bundle", o.VALUE),
        "--pid-file": ("pid_file", o.VALUE), "--console-socket": ("console_socket", o.VALUE),
        "--no-pivot": ("no_pivot", o.FLAG), "--no-new-keyring": ("no_new_keyring", o.FLAG),
        "--preserve-fds": ("preserve_fds", o.VALUE)}


def parse(name: str, argv: list):
    opts, args = o.parse(name, argv, SPEC)
    (cid,) = o.positional(name, args, ["ID"])
    if opts["preserve_fds"] not in (None, "0"):
        from smith.errors import SmithError
        raise SmithError("%s: --preserve-fds is not supported (only 0)" % name)
    return opts, cid


def main(argv: list, g=None) -> int:
    from smith.runtime import container
    from smith.runtime.main import Globals
    g = g or Globals()
    opts, cid = parse("create", argv)
    container.create(g.root, cid, opts["bundle"] or ".", opts["pid_file"], opts["console_socket"],
                     opts["no_pivot"])
    return 0
