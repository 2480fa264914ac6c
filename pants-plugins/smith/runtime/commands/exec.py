"""exec [--process F | options ID ARGS...] [--detach] [--pid-file F] [--console-socket S] [--tty] ID"""
import copy

from smith.errors import SmithError
from smith.runtime import options as o

SPEC = {
    "--process": ("process", o.VALUE), "-p": ("process", o.VALUE),
    "--detach": ("detach", o.FLAG), "-d": ("detach", o.FLAG),
    "--pid-file": ("pid_file", o.VALUE), "--console-socket": ("console_socket", o.VALUE),
    "--tty": ("tty", o.FLAG), "-t": ("tty", o.FLAG),
    "--cwd": ("cwd", o.VALUE), "--env": ("env", o.MULTI), "-e": ("env", o.MULTI),
    "--user": ("user", o.VALUE), "-u": ("user", o.VALUE),
    "--additional-gids": ("gids", o.MULTI), "-g": ("gids", o.MULTI),
    "--cap": ("cap", o.MULTI), "-c": ("cap", o.MULTI),
    "--no-new-privs": ("nnp", o.FLAG), "--preserve-fds": ("preserve_fds", o.VALUE),
    "--process-label": ("label", o.VALUE), "--apparmor": ("apparmor", o.VALUE),
    "--ignore-paused": ("ignore_paused", o.FLAG), "--cgroup": ("cgroup", o.MULTI),
}


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SmithError("exec: %s must be a number, got %r" % (what, value)) from None


def build_process(opts: dict, args: list, base: dict) -> dict:
    if opts["process"]:
        from smith.runtime import fastjson, spec
        try:
            with open(opts["process"], "rb") as f:
                raw = f.read(spec.MAX_CONFIG_SIZE + 1)
            if len(raw) > spec.MAX_CONFIG_SIZE:
                raise ValueError("too large (more than %d MiB)" % (spec.MAX_CONFIG_SIZE >> 20))
            process = fastjson.loads(raw)
        except (OSError, ValueError) as e:
            raise SmithError("exec --process %s: cannot read it: %s" % (opts["process"], e)) from None
        spec._process(spec._Checker(opts["process"]), process)
        return process
    if not args:
        raise SmithError("exec: give the command to run after the container id, or --process FILE")
    process = copy.deepcopy(base)
    process["args"] = args
    process["terminal"] = opts["tty"]
    if opts["cwd"]:
        process["cwd"] = opts["cwd"]
    process["env"] = list(process.get("env") or []) + opts["env"]
    if opts["user"]:
        uid, _, gid = opts["user"].partition(":")
        process["user"] = {"uid": _int(uid, "--user uid"), "gid": _int(gid, "--user gid") if gid else 0}
    if opts["gids"]:
        process["user"]["additionalGids"] = [_int(g, "--additional-gids") for g in opts["gids"]]
    if opts["cap"]:
        from smith.runtime import caps
        capset = process.setdefault("capabilities", {})
        for cap in opts["cap"]:
            if cap not in caps.NUMBER:
                raise SmithError("exec --cap: unknown capability %r" % cap)
            for k in ("bounding", "effective", "permitted", "ambient", "inheritable"):
                capset.setdefault(k, [])
                if cap not in capset[k]:
                    capset[k].append(cap)
    if opts["nnp"]:
        process["noNewPrivileges"] = True
    return process


def main(argv: list, g=None) -> int:
    from smith.runtime import execproc, state
    from smith.runtime.main import Globals
    g = g or Globals()
    opts, args = o.parse("exec", argv, SPEC)
    if not args:
        raise SmithError("exec: missing argument ID (usage: exec [options] ID [COMMAND ARGS...])")
    cid, command = args[0], args[1:]
    if opts["preserve_fds"] not in (None, "0"):
        raise SmithError("exec: --preserve-fds is not supported (only 0)")
    if opts["label"] or opts["apparmor"]:
        raise SmithError("exec: --process-label/--apparmor are not supported (no SELinux/AppArmor)")
    if opts["cgroup"]:
        raise SmithError("exec: --cgroup is not supported; the process joins the container's cgroups")
    with state.Container(g.root, cid, lock=False) as c:
        base = c.state["config"]["process"]
    process = build_process(opts, command, base)
    if opts["tty"]:
        process["terminal"] = True
    return execproc.run(g.root, cid, process, opts["detach"], opts["pid_file"], opts["console_socket"])
