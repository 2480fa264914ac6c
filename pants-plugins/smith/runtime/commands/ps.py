"""ps [--format table|json] ID [PS_ARGS...]: the container's processes (from its cgroup)."""
import sys

from smith.errors import SmithError
from smith.runtime import options as o


def main(argv: list, g=None) -> int:
    from smith.runtime import cgroups, state
    from smith.runtime.main import Globals
    g = g or Globals()
    opts, args = o.parse("ps", argv, {"--format": ("format", o.VALUE), "-f": ("format", o.VALUE)})
    (cid,) = o.positional("ps", args[:1], ["ID"])
    ps_args = args[1:] or ["-ef"]
    with state.Container(g.root, cid, lock=False) as c:
        pids = cgroups.pids(c.state.get("cgroup_dirs") or {})
    fmt = opts["format"] or "table"
    if fmt == "json":
        import json
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    if fmt != "table":
        raise SmithError("ps: --format must be table or json, not %r" % fmt)
    import subprocess
    out = subprocess.run(["ps"] + ps_args, stdout=subprocess.PIPE, universal_newlines=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.splitlines()
    if not out:
        return 1
    header = out[0].split()
    if "PID" not in header:
        raise SmithError("ps: the ps output has no PID column; pass ps options that include it")
    col = header.index("PID")
    sys.stdout.write(out[0] + "\n")
    for line in out[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            sys.stdout.write(line + "\n")
    return 0
