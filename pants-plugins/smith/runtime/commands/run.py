"""run [--bundle B] [--pid-file F] [--console-socket S] [--detach] [--keep] [--no-pivot] ID

create + start, then (unless --detach) wait for the program, forwarding signals to it, delete
the container and exit with its status (128+N if killed by signal N), as runc does."""

from smith.runtime import options as o
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)
from smith.runtime.commands import create as create_cmd

SPEC = dict(create_cmd.SPEC)
SPEC.update({"--detach": ("detach", o.FLAG), "-d": ("detach", o.FLAG), "--keep": ("keep", o.FLAG),
             "--no-subreaper": ("no_subreaper", o.FLAG)})
NOT_FORWARDED = {9, 17, 19}  # KILL and STOP cannot be caught; CHLD is ours


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def wait_for(pid: int) -> int:
    """Reap children (we are a subreaper) until `pid` exits; returns its exit code."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if got == pid:
            return exit_code(status)


class Forwarder:
    """Catch signals from before the container exists; pass them on once its pid is known."""

    def __init__(self):
        import _signal
        self.pid = 0
        self.pending = []
        for sig in range(1, 32):
            if sig not in NOT_FORWARDED:
                try:
                    _signal.signal(sig, self._handle)
                except (OSError, ValueError):
                    pass

    def _handle(self, sig, frame):
        if self.pid:
            self._send(sig)
        else:
            self.pending.append(sig)

    def _send(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def target(self, pid: int) -> None:
        self.pid = pid
        while self.pending:
            self._send(self.pending.pop(0))


def forward_signals(pid: int) -> Forwarder:
    f = Forwarder()
    f.target(pid)
    return f


def main(argv: list, g=None) -> int:
    from smith.runtime import container, libc, state
    from smith.runtime.main import Globals
    g = g or Globals()
    opts, args = o.parse("run", argv, SPEC)
    (cid,) = o.positional("run", args, ["ID"])
    if not opts["detach"] and not opts["no_subreaper"]:
        # init is our grandchild (the first process of a pid namespace must be forked after
        # unshare): as a subreaper we inherit it and can wait for its exit status.
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    forwarder = None if opts["detach"] else Forwarder()
    record = {}
    pid = container.create(g.root, cid, opts["bundle"] or ".", opts["pid_file"],
                           opts["console_socket"], opts["no_pivot"], start_now=True, record_out=record)
    try:
        container.poststart(g.root, cid, record)
    except BaseException:
        if not opts["detach"]:
            with state.Container(g.root, cid, record=record) as c:
                container.destroy(c)
        raise
    if opts["detach"]:
        return 0
    forwarder.target(pid)
    code = wait_for(pid)
    if not opts["keep"]:
        with state.Container(g.root, cid, record=record) as c:
            container.destroy(c)
    return code
