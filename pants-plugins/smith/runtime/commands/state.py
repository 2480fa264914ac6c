"""state ID: the runtime-spec state as JSON (indented like runc's)."""
import sys

from smith.runtime import options as o


def main(argv: list, g=None) -> int:
    from smith.runtime import state
    from smith.runtime.main import Globals
    g = g or Globals()
    _, args = o.parse("state", argv, {})
    (cid,) = o.positional("state", args, ["ID"])
    with state.Container(g.root, cid, lock=False) as c:
        oci = c.oci_state()
        # runc's field order; annotations only when there are some
        st = {k: oci[k] for k in ("ociVersion", "id", "pid", "status", "bundle")}
        st["rootfs"] = c.state.get("rootfs", "")
        st["created"] = c.state.get("created", "")
        st["owner"] = c.state.get("owner", "")
        if oci["annotations"]:
            st["annotations"] = oci["annotations"]
    import json
    sys.stdout.write(json.dumps(st, indent=2) + "\n")
    return 0
