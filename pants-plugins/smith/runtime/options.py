"""A small option parser with runc's (urfave/cli) conventions; argparse costs ~7 ms to import.

Options come before positional arguments (`--opt VALUE`, `--opt=VALUE`, `-o VALUE`); the first
positional argument ends option parsing (so `exec ID CMD --flag` passes `--flag` to CMD).
An unknown option is an error that lists the known ones.
"""

from smith.errors import SmithError

FLAG, VALUE, MULTI = "flag", "value", "multi"


def parse(command: str, argv: list, spec: dict) -> tuple:
    """spec maps each spelling ("--bundle", "-b") to (key, FLAG|VALUE|MULTI)."""
    opts = {}  
    for key, kind in spec.values():
        opts.setdefault(key, [] if kind == MULTI else (False if kind == FLAG else None))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, inline = arg.partition("=")
        if name not in spec and name.startswith("--") and ("-" + name[2:]) in spec:
            name = "-" + name[2:]  # urfave accepts both -x and --x for every flag
        if name not in spec and len(name) > 2 and name[1] != "-" and ("-" + name) in spec:
            name = "-" + name
        if name not in spec:
            known = ", ".join(sorted(s for s in spec if s.startswith("--")))
            raise SmithError("%s: unknown option %r (known options: %s)" % (command, name, known or "none"))
        key, kind = spec[name]
        if kind == FLAG:
            if eq and inline not in ("true", "false"):
                raise SmithError("%s: option %s takes no value (or =true/=false), got %r" % (command, name, inline))
            opts[key] = (inline != "false")
        else:
            if eq:
                value = inline
            else:
                i += 1
                if i >= len(argv):
                    raise SmithError("%s: option %s needs a value" % (command, name))
                value = argv[i]
            if kind == MULTI:
                opts[key].append(value)
            else:
                opts[key] = value
        i += 1
    return opts, argv[i:]


def positional(command: str, args: list, names: list, extra_ok: bool = False) -> list:
    """Check the count of positional arguments, naming what is missing or extra."""
    if len(args) < len(names):
        raise SmithError("%s: missing argument %s (usage: %s %s)"
                         % (command, names[len(args)], command, " ".join(names)))
    if len(args) > len(names) and not extra_ok:
        raise SmithError("%s: unexpected extra arguments %s (usage: %s %s)"
                         % (command, args[len(names):], command, " ".join(names)))
    return args
