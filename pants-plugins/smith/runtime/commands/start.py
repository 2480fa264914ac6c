"""start ID"""

from smith.runtime import options as o


def main(argv: list, g=None) -> int:
    from smith.runtime import container
    from smith.runtime.main import Globals
    g = g or Globals()
    _, args = o.parse("start", argv, {})
    (cid,) = o.positional("start", args, ["ID"])
    container.start(g.root, cid)
    return 0
