"""list [--format table|json] [--quiet]"""
import os
import sys

from smith.errors import SmithError
from smith.runtime import options as o


def main(argv: list, g=None) -> int:
    from smith.runtime import state
    from smith.runtime.main import Globals
    g = g or Globals()
    opts, args = o.parse("list", argv, {"--format": ("format", o.VALUE), "-f": ("format", o.VALUE),
                                        "--quiet": ("quiet", o.FLAG), "-q": ("quiet", o.FLAG)})
    o.positional("list", args, [])
    fmt = opts["format"] or "table"
    if fmt not in ("table", "json"):
        raise SmithError("list: --format must be table or json, not %r" % fmt)
    rows = []
    for cid in sorted(os.listdir(g.root)) if os.path.isdir(g.root) else ():
        try:
            with state.Container(g.root, cid, lock=False) as c:
                st = c.oci_state()
                st.update(rootfs=c.state.get("rootfs", ""), created=c.state.get("created", ""),
                          owner=c.state.get("owner") or "root")
                rows.append(st)
        except SmithError:
            continue  # being created or deleted right now
    if opts["quiet"]:
        sys.stdout.write("".join(r["id"] + "\n" for r in rows))
    elif fmt == "json":
        import json
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            sys.stdout.write("".join(c.ljust(w + 4) for c, w in zip(row, widths)) + row[5] + "\n")
    return 0
