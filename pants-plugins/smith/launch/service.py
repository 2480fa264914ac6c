"""A service test: start an image detached, wait until it is ready, talk to it inside its own
network namespace, stop it, optionally restart it on the same /write, and clean up.

Everything network-related happens in the container's network namespace, without host ports:
setns(CLONE_NEWNET) changes only the calling thread, so each socket is created (and connected)
in a short-lived thread that joined the namespace; the socket keeps that namespace wherever it
is used afterwards. A `client` check runs another image as a sidecar that joins the same
namespace (bundle namespace `network` with `path: /proc/PID/ns/net`).

The launcher makes itself a child subreaper, so the container's init (orphaned when
`RUNTIME run --detach` returns) becomes its child: that is how the exit code of a stopped
service is known.
"""
import http.client
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from smith import linux
from smith.errors import SmithError, for_terminal
from smith.launch import bundle, container
from smith.launch.container import Settings
from smith.launch.service_spec import ClientCheck, HttpCheck, Spec, TcpCheck
from smith.launch.smoketest_cli import check as check_result
from smith.oci.image_source import image_platforms, open_image, split_ref
from smith.registry.platforms import Platform, same_platform

PR_SET_CHILD_SUBREAPER = 36
POLL = 0.05
REPLY_CAP = 1 << 20      # bytes of a reply kept
SHOW = 300               # bytes of a reply shown in a failure
IDLE = 1.0               # a reply that stopped coming for this long is complete
SHOW_LOG = 64 * 1024     # bytes of each container log shown


class CheckFailed(Exception):
    """A check (or phase) failed; `lines` say what was sent and what came back."""

    def __init__(self, what: str, lines: List[str] = (), client_output: Optional[Tuple[bytes, bytes]] = None):
        super().__init__(what)
        self.what = what
        self.lines = list(lines)
        self.client_output = client_output


class TestTimeout(BaseException):
    pass


def show_bytes(data: bytes, limit: int = SHOW) -> str:
    text = repr(data[:limit])
    if len(data) > limit:
        text += " ... (%d bytes in all)" % len(data)
    else:
        text += " (%d bytes)" % len(data)
    return text


# -- the network namespace ------------------------------------------------------------------------
class Netns:
    """The network namespace of a running container, held by an fd while the test uses it."""

    def __init__(self, pid: int) -> None:
        self.fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def call(self, fn: Callable[[], Any]) -> Any:
        """fn() in a fresh thread that joined the namespace (setns is per thread)."""
        box: dict = {}

        def target() -> None:
            try:
                linux.setns(self.fd, linux.CLONE_NEWNET)
                box["value"] = fn()
            except BaseException as e:  # handed to the caller's thread
                box["error"] = e

        t = threading.Thread(target=target, name="smith-netns", daemon=True)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def connect(self, port: int, timeout: float, host: str = "127.0.0.1") -> socket.socket:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(timeout)
                s.connect((host, port))
            except BaseException:
                s.close()
                raise
            return s
        return self.call(make)


class _NetnsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, netns: Netns, port: int, timeout: float) -> None:
        super().__init__("127.0.0.1", port, timeout=timeout)
        self._netns = netns

    def connect(self) -> None:
        self.sock = self._netns.connect(self.port, self.timeout)


# -- checks ---------------------------------------------------------------------------------------
def tcp_exchange(sock: socket.socket, send: bytes, expect: "re.Pattern",
                 timeout: float) -> Tuple[bytes, Optional[str]]:
    """Send, then read until the reply matches; returns (reply, None) or (reply, why not)."""
    deadline = time.monotonic() + timeout
    if send:
        sock.settimeout(timeout)
        sock.sendall(send)
    got = b""
    while True:
        if expect.search(got.decode("utf-8", "replace")):
            return got, None
        left = deadline - time.monotonic()
        if left <= 0:
            return got, "no matching reply within %s s" % timeout
        sock.settimeout(min(left, IDLE) if got else left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if got:
                return got, "the reply ended (nothing more for %s s) without a match" % IDLE
            continue
        except OSError as e:
            return got, "reading failed: %s" % e
        if not chunk:
            return got, "the server closed the connection without a matching reply"
        got = (got + chunk)[:REPLY_CAP]


def run_tcp(netns: Netns, c: TcpCheck) -> str:
    where = "%s (tcp, port %d)" % (c.where, c.port)
    try:
        sock = netns.connect(c.port, c.timeout)
    except OSError as e:
        raise CheckFailed("%s: could not connect to 127.0.0.1:%d in the container: %s"
                          % (where, c.port, e), ["sent     nothing (no connection)"])
    try:
        try:
            reply, why = tcp_exchange(sock, c.send, c.expect, c.timeout)
        except OSError as e:
            raise CheckFailed("%s: sending failed: %s" % (where, e), ["sent     " + show_bytes(c.send)])
    finally:
        sock.close()
    if why is not None:
        raise CheckFailed("%s: the reply does not match %r: %s" % (where, c.expect.pattern, why),
                          ["sent     " + show_bytes(c.send), "received " + show_bytes(reply)])
    return "sent %s, received %s" % (show_bytes(c.send, 60), show_bytes(reply, 60))


def run_http(netns: Netns, c: HttpCheck) -> str:
    where = "%s (http, port %d)" % (c.where, c.port)
    headers = {"Connection": "close"}
    headers.update(c.request_headers)
    sent = "%s %s HTTP/1.1 (Host: 127.0.0.1:%d, %s)%s" % (
        c.method, c.path, c.port, ", ".join("%s: %s" % kv for kv in headers.items()),
        (" with body " + show_bytes(c.data)) if c.data else "")
    conn = _NetnsHTTPConnection(netns, c.port, c.timeout)
    try:
        try:
            conn.request(c.method, c.path, body=c.data or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read(REPLY_CAP)
        except (OSError, http.client.HTTPException) as e:
            raise CheckFailed("%s: the request failed: %s: %s" % (where, type(e).__name__, e),
                              ["sent     " + sent, "received nothing usable"])
    finally:
        conn.close()
    got_headers = ["%s: %s" % kv for kv in resp.getheaders()]
    received = ["received HTTP/%s %d %s" % ("1.1" if resp.version == 11 else "1.0", resp.status,
                                            resp.reason),
                "         headers " + "; ".join(got_headers)[:SHOW],
                "         body " + show_bytes(body)]
    problems = []
    if resp.status != c.status:
        problems.append("status %d, expected %d" % (resp.status, c.status))
    for name, pattern in c.headers.items():
        value = resp.getheader(name)
        if value is None:
            problems.append("no %s header (expected one matching %r)" % (name, pattern.pattern))
        elif not pattern.search(value):
            problems.append("header %s: %r does not match %r" % (name, value, pattern.pattern))
    if c.body is not None and not c.body.search(body.decode("utf-8", "replace")):
        problems.append("the body does not match %r" % c.body.pattern)
    if problems:
        raise CheckFailed("%s: %s" % (where, "; ".join(problems)), ["sent     " + sent] + received)
    return "%s %s -> %d, body %s" % (c.method, c.path, resp.status, show_bytes(body, 60))


def _client_platform(layout: str, platform: Optional[Platform]) -> Optional[Platform]:
    """The client runs as the service's platform when its image has it, else as its default."""
    if platform is None:
        return None
    offered = [p for p in image_platforms(*split_ref(layout)) if p is not None]
    return platform if any(same_platform(p, platform) for p in offered) else None


def run_client(pid: int, c: ClientCheck, settings: Settings, platform: Optional[Platform] = None) -> str:
    where = "%s (client)" % c.where
    image = open_image(c.layout, platform=_client_platform(c.layout, platform))
    opts = bundle.Options(args=list(c.command) + list(c.args) if c.command else list(c.args),
                          whole_command=bool(c.command),
                          env=["%s=%s" % kv for kv in sorted(c.env.items())],
                          network="join", netns="/proc/%d/ns/net" % pid)
    argv = " ".join(opts.args) if opts.args else "(the image's Entrypoint + Cmd)"
    result = container.run(image, opts, settings, capture=True, timeout=c.timeout)
    problems = check_result(result, c.expect_exit, c.expect_stdout, c.expect_stderr)
    if problems:
        raise CheckFailed("%s: %s" % (where, "; ".join(problems)),
                          ["ran      " + argv,
                           "exit     %d%s" % (result.exit_code, " (timed out)" if result.timed_out else ""),
                           "stdout   " + show_bytes(result.stdout),
                           "stderr   " + show_bytes(result.stderr)],
                          client_output=(result.stdout, result.stderr))
    return "ran %s: exit %d, stdout %s" % (argv, result.exit_code, show_bytes(result.stdout, 60))


# -- one service container ------------------------------------------------------------------------
def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Service:
    """The service's container across its runs (the same id range and /write on a restart)."""

    def __init__(self, spec: Spec, settings: Settings, platform: Optional[Platform] = None) -> None:
        self.spec, self.settings, self.platform = spec, settings, platform
        self.image = open_image(spec.layout, platform=platform)
        opts = bundle.Options(args=list(spec.command) + list(spec.args) if spec.command else list(spec.args),
                              whole_command=bool(spec.command),
                              env=["%s=%s" % kv for kv in sorted(spec.env.items())],
                              read_dir=spec.read, network="none")
        self.container = container.Container(self.image, opts, settings)
        self.pid = 0
        self.netns: Optional[Netns] = None
        self.exit: Optional[int] = None
        self.logs: List[Tuple[str, bytes, bytes]] = []  # (which run, stdout, stderr) of ended runs
        self.run_name = "service"

    def start(self) -> None:
        self.container.setup()
        self.exit = None
        self.pid = self.container.start_detached()
        try:
            self.netns = Netns(self.pid)
        except OSError as e:
            if self.exited():
                raise CheckFailed("the service exited with code %s right after it started" % self._code())
            raise SmithError("cannot open the network namespace of the container's init %d: %s"
                             % (self.pid, e))

    def output(self) -> Tuple[bytes, bytes]:
        return self.container.read_log("stdout"), self.container.read_log("stderr")

    def exited(self) -> bool:
        """Whether init has ended (its exit code is then in self.exit, None if unknown)."""
        if self.exit is not None:
            return True
        try:
            got, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child: a runtime that keeps init to itself
            if linux.start_time(self.pid) is None:
                self.exit = -1
                return True
            return False
        if got == 0:
            return False
        self.exit = exit_code(status)
        return True

    def wait_ready(self) -> str:
        spec = self.spec
        deadline = time.monotonic() + spec.ready_timeout
        port_ok = spec.ready_port is None
        log_ok = spec.ready_log is None
        last_error = "not tried"
        while True:
            if self.exited():
                raise CheckFailed("the service exited with code %s before it was ready"
                                  % self._code())
            if not port_ok:
                try:
                    self.netns.connect(spec.ready_port, 0.5).close()
                    port_ok = True
                except OSError as e:
                    last_error = str(e)
            if not log_ok:
                out, err = self.output()
                log_ok = bool(spec.ready_log.search((out + err).decode("utf-8", "replace")))
            if port_ok and log_ok:
                parts = (["port %d accepts" % spec.ready_port] if spec.ready_port else []) + \
                        (["log matched %r" % spec.ready_log.pattern] if spec.ready_log else [])
                return ", ".join(parts) or "started (no ready_port or ready_log)"
            if time.monotonic() > deadline:
                why = []
                if not port_ok:
                    why.append("port %d did not accept a connection (last: %s)" % (spec.ready_port, last_error))
                if not log_ok:
                    why.append("its output never matched ready_log %r" % spec.ready_log.pattern)
                raise CheckFailed("not ready within ready_timeout %s s: %s" % (spec.ready_timeout, "; ".join(why)))
            time.sleep(POLL)

    def _code(self) -> str:
        return "unknown (init is not the launcher's child)" if self.exit == -1 else str(self.exit)

    def stop(self) -> str:
        spec = self.spec
        if self.exited():
            raise CheckFailed("the service had already exited with code %s before it was stopped"
                              % self._code())
        try:
            self.container.kill(spec.stop_signal)
        except SmithError:
            if not self.exited():
                raise
        deadline = time.monotonic() + spec.stop_timeout
        while not self.exited():
            if time.monotonic() > deadline:
                try:
                    self.container.kill("KILL")
                except SmithError:
                    pass
                kill_deadline = time.monotonic() + 10
                while not self.exited() and time.monotonic() < kill_deadline:
                    time.sleep(POLL)
                raise CheckFailed("the service did not stop within stop_timeout %s s after SIG%s; "
                                  "it was killed (a program that is PID 1 ignores signals it has no "
                                  "handler for: set stop_signal to one it handles)"
                                  % (spec.stop_timeout, spec.stop_signal))
            time.sleep(POLL)
        if self.exit == -1:
            raise CheckFailed("the service stopped, but its exit code is unknown (init is not the "
                              "launcher's child; is the runtime keeping it?)")
        if self.exit != spec.expect_stop_exit:
            raise CheckFailed("after SIG%s the service exited with code %d, expected %d (expect_stop_exit)"
                              % (spec.stop_signal, self.exit, spec.expect_stop_exit))
        return "SIG%s -> exit %d" % (spec.stop_signal, self.exit)

    def end_run(self, keep_write: bool) -> None:
        """Keep this run's output, close its namespace, delete its container."""
        if self.netns is not None:
            self.netns.close()
            self.netns = None
        if self.pid and self.container.ids is not None:
            out, err = self.output()
            self.logs.append((self.run_name, out, err))
            self.container.teardown(keep_write=keep_write)
            try:  # deleted by force: reap init if it is ours
                os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            self.pid = 0

    def close(self) -> None:
        try:
            self.end_run(keep_write=False)
        finally:
            try:
                self.container.cleanup()
            finally:
                self.image.store.close()


# -- the whole test -------------------------------------------------------------------------------
class Report:
    def __init__(self) -> None:
        self.phases: List[Tuple[str, float]] = []
        self.lines: List[str] = []
        self.current = ""
        self.started = time.monotonic()

    def phase(self, name: str, fn: Callable[[], Any]) -> Any:
        self.current = name
        t0 = time.monotonic()
        try:
            return fn()
        finally:
            self.phases.append((name, time.monotonic() - t0))
            self.current = ""

    def timeline(self) -> str:
        return " -> ".join("%s %.2f s" % p for p in self.phases)

    def total(self) -> float:
        return time.monotonic() - self.started


def become_subreaper() -> None:
    linux.check(linux.libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def _checks(svc: Service, checks: List[Any], report: Report) -> None:
    for c in checks:
        t0 = time.monotonic()
        if isinstance(c, TcpCheck):
            said = run_tcp(svc.netns, c)
        elif isinstance(c, HttpCheck):
            said = run_http(svc.netns, c)
        else:
            said = run_client(svc.pid, c, svc.settings, svc.platform)
        report.lines.append("  ok %s (%.2f s): %s" % (c.where, time.monotonic() - t0, said))


def _show(title: str, data: bytes, out) -> None:
    shown = data[-SHOW_LOG:]
    text = shown.decode("utf-8", "replace")
    cut = " (last %d)" % len(shown) if len(shown) < len(data) else ""
    print("----- %s (%d bytes%s) -----" % (title, len(data), cut), file=out)
    print(text, end="" if text.endswith("\n") or not text else "\n", file=out)


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: nothing left behind


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise TestTimeout()


def run(spec: Spec, settings: Settings, out=None, platform: Optional[Platform] = None,
        label: str = "") -> int:
    """Run the service test (of the image for `platform`, named by `label` in the output);
    prints PASS/FAIL with the phases; returns 0 or 1."""
    out = out or sys.stdout
    name = "%s %s" % (spec.name, label) if label else spec.name
    report = Report()
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    old[signal.SIGALRM] = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(math.ceil(spec.timeout)))
    container.preflight(settings)
    become_subreaper()
    svc: Optional[Service] = None
    failure: Optional[CheckFailed] = None
    try:
        try:
            svc = Service(spec, settings, platform)
            report.phase("start", svc.start)
            report.lines.append("  ready: " + report.phase("ready", svc.wait_ready))
            report.phase("checks", lambda: _checks(svc, spec.checks, report))
            report.lines.append("  stop: " + report.phase("stop", svc.stop))
            if spec.restart:
                svc.end_run(keep_write=True)
                svc.run_name = "service after restart"
                report.phase("restart", svc.start)
                report.lines.append("  ready after restart: " + report.phase("ready", svc.wait_ready))
                report.phase("after_restart", lambda: _checks(svc, spec.after_restart, report))
                report.lines.append("  stop after restart: " + report.phase("stop", svc.stop))
        except CheckFailed as e:
            failure = e
        except (SmithError, OSError) as e:
            failure = CheckFailed("%s: %s" % ("error" if isinstance(e, SmithError) else type(e).__name__, e))
        except TestTimeout:
            failure = CheckFailed("the test did not finish within its timeout of %s s (in phase %s)"
                                  % (spec.timeout, report.phases[-1][0] if report.phases else "start"))
        finally:
            signal.alarm(0)
        failed_in = report.phases[-1][0] if failure is not None and report.phases else ""
        if svc is not None:
            svc.end_run(keep_write=False)
    finally:
        signal.alarm(0)
        try:
            if svc is not None:
                svc.close()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
    # The report's lines quote what the service answered (an HTTP reason, headers, an OSError
    # about its reply): escaped. Its logs below are its own output, shown as they are.
    if failure is None:
        print("PASS %s in %.2f s: %s" % (name, report.total(), report.timeline()), file=out)
        for line in report.lines:
            print(for_terminal(line), file=out)
        return 0
    print(for_terminal("FAIL %s: %s" % (name, failure.what)), file=out)
    for line in failure.lines:
        print("  " + for_terminal(line), file=out)
    print("phases: %s (failed in %s); %.2f s in all" % (report.timeline() or "-", failed_in or "start",
                                                       report.total()), file=out)
    for line in report.lines:
        print(for_terminal(line), file=out)
    for name, stdout, stderr in (svc.logs if svc is not None else []):
        _show("%s stdout" % name, stdout, out)
        _show("%s stderr" % name, stderr, out)
    if failure.client_output is not None:
        _show("client stdout", failure.client_output[0], out)
        _show("client stderr", failure.client_output[1], out)
    out.flush()
    return 1
