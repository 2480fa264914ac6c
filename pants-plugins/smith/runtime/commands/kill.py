"""kill [--all] ID [SIGNAL]: SIGNAL by name (KILL, SIGKILL) or number; default SIGTERM."""

from smith.errors import SmithError
from smith.runtime import options as o

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31,
}


def parse_signal(text: str) -> int:
    if text.isdigit():
        n = int(text)
        if 0 <= n <= 64:
            return n
    name = text.upper()
    name = name[3:] if name.startswith("SIG") else name
    if name in SIGNALS:
        return SIGNALS[name]
    if name.startswith("RTMIN") or name.startswith("RTMAX"):
        try:
            off = int(name[5:] or 0)
            return 34 + off if name.startswith("RTMIN") else 64 + off
        except ValueError:
            pass
    raise SmithError("kill: unknown signal %r (use a name like TERM or KILL, or a number)" % text)


def main(argv: list, g=None) -> int:
    from smith.runtime import container
    from smith.runtime.main import Globals
    g = g or Globals()
    opts, args = o.parse("kill", argv, {"--all": ("all", o.FLAG), "-a": ("all", o.FLAG)})
    if len(args) > 2:
        o.positional("kill", args, ["ID", "SIGNAL"])
    (cid,) = o.positional("kill", args[:1], ["ID"])
    sig = parse_signal(args[1]) if len(args) > 1 else 15
    container.kill(g.root, cid, sig, opts["all"])
    return 0
