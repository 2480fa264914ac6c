"""`smith-runtime`: runc's command line. Global options, then one module per command.

Errors are printed to stderr and, with --log, appended to the log file (as JSON lines with
--log-format json, which is how podman's conmon reads a runtime's errors).
"""
import sys

from smith.errors import SmithError, for_terminal

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2"
COMMANDS = {
    "create": "create a container and leave it waiting for start",
    "start": "start the program of a created container",
    "run": "create + start + wait; exits with the program's status",
    "state": "print the runtime-spec state of a container as JSON",
    "kill": "send a signal to the container's init (or all its processes)",
    "delete": "remove a container's state, cgroups and processes",
    "exec": "run another process in a running container",
    "list": "list containers",
    "ps": "list the processes of a container",
    "features": "print the features this runtime supports as JSON",
}
USAGE = ("usage: smith-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...\n\n"
         "commands:\n" + "".join("  %-9s %s\n" % kv for kv in COMMANDS.items()))


class Globals:
    root = "/run/smith-runtime"
    log = None
    log_format = "text"
    debug = False


def _log(g: Globals, level: str, msg: str) -> None:
    if not g.log:
        return
    from smith.runtime import fastjson, state
    if g.log_format == "json":
        line = fastjson.dumps({"level": level, "msg": msg, "time": state.iso_now()})
    else:
        # one record a line, no terminal escapes (the message quotes strangers' text), as runc's logrus
        text = for_terminal(msg).replace("\n", "\\n").replace('"', '\\"')
        line = 'time="%s" level=%s msg="%s"' % (state.iso_now(), level, text)
    try:
        with open(g.log, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def parse_globals(argv: list):
    from smith.runtime import options
    spec = {"--root": ("root", options.VALUE), "--log": ("log", options.VALUE),
            "--log-format": ("log_format", options.VALUE), "--debug": ("debug", options.FLAG),
            "--systemd-cgroup": ("systemd_cgroup", options.FLAG),
            "--rootless": ("rootless", options.VALUE), "--criu": ("criu", options.VALUE),
            "--version": ("version", options.FLAG), "-v": ("version", options.FLAG),
            "--help": ("help", options.FLAG), "-h": ("help", options.FLAG)}
    opts, rest = options.parse("smith-runtime", argv, spec)
    g = Globals()
    g.root = opts["root"] or Globals.root
    g.log = opts["log"]
    g.log_format = opts["log_format"] or "text"
    g.debug = opts["debug"]
    if g.log_format not in ("text", "json"):
        raise SmithError("--log-format must be text or json, not %r" % g.log_format)
    if opts["systemd_cgroup"]:
        raise SmithError("--systemd-cgroup is not supported: this runtime manages cgroups through "
                         "cgroupfs only (with podman use --cgroup-manager cgroupfs)")
    if opts["rootless"] not in (None, "false", "auto") and opts["rootless"]:
        raise SmithError("--rootless %s is not supported: run as root" % opts["rootless"])
    return g, opts, rest


def main(argv: list) -> int:
    g = Globals()
    try:
        g, opts, rest = parse_globals(argv)
        if opts["version"]:
            sys.stdout.write("smith-runtime version %s\nspec: %s\n" % (VERSION, SPEC_VERSION))
            return 0
        if opts["help"] or not rest or rest[0] == "help":
            sys.stdout.write(USAGE)
            return 0 if (opts["help"] or rest) else 2
        command, args = rest[0], rest[1:]
        if command not in COMMANDS:
            raise SmithError("unknown command %r (commands: %s)" % (command, ", ".join(COMMANDS)))
        name = "smith.runtime.commands." + command
        __import__(name)  # importlib.import_module would import importlib's package (~0.5 ms)
        return int(sys.modules[name].main(args, g) or 0)
    except SmithError as e:
        _log(g, "error", str(e))
        sys.stderr.write("smith-runtime: error: %s\n" % for_terminal(e))
        return 1
    except OSError as e:
        _log(g, "error", str(e))
        sys.stderr.write("smith-runtime: error: %s\n" % for_terminal(e))
        return 1
