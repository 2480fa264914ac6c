"""delete [--force] ID"""

from smith.runtime import options as o


def main(argv: list, g=None) -> int:
    from smith.runtime import container
    from smith.runtime.main import Globals
    g = g or Globals()
    opts, args = o.parse("delete", argv, {"--force": ("force", o.FLAG), "-f": ("force", o.FLAG)})
    (cid,) = o.positional("delete", args, ["ID"])
    container.delete(g.root, cid, opts["force"])
    return 0
