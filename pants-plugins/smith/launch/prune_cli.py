"""`smith.launch prune`: remove the store's layers that no container uses now."""
import argparse
import sys
from typing import List

from smith.launch.container import require_root
from smith.launch.id_pool import IdPool
from smith.launch.layer_store import LayerStore


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith-launch prune", description=__doc__, allow_abbrev=False)
    p.add_argument("--store", default="/var/lib/smith", metavar="DIR", help="the store (default /var/lib/smith)")
    ns: argparse.Namespace = p.parse_args(argv)
    require_root()
    store = LayerStore(ns.store)
    with store.in_use(exclusive=True):
        # Every recorded container keeps its layers, live or not yet reaped.
        keep = {d for r in IdPool(ns.store).in_use() for d in r.layers}
        removed = store.prune(keep)
    for diff_id, size in removed:
        print("removed %s (%d KiB)" % (diff_id, size // 1024))
    print("%d layers removed, %d KiB freed; %d kept in use" % (len(removed), sum(s for _, s in removed) // 1024,
                                                              len(keep)), file=sys.stderr)
    return 0
