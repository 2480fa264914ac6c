"""One HTTP(S) exchange with a registry: TLS set-up, plain-http fallback for local registries,
redirects, bounds on time and size, and the errors worth retrying. Retrying itself is done by the
caller (client.py), which knows how to restart an operation (e.g. reopen the file being uploaded).

Bounds on every exchange (a registry is a stranger; it may be slow on purpose):
- a deadline: the whole exchange, connect to last byte, takes at most `deadline` seconds;
- a minimum transfer rate: once bytes flow (sending the request, or receiving the answer), fewer
  than `min_rate` bytes/s over a `rate_window`-second window stops the exchange (a server that
  sends 1 byte every 5 s); a server that is silent while it works is bounded by `timeout`;
- `limit`: a body larger than the caller expects (a blob's descriptor size) is refused at
  `limit` + 1 bytes, before more is read;
- one watchdog thread enforces the first two for all exchanges: it shuts the socket down, so a
  read blocked in the middle of a buffer returns at once.
Connections are kept open (HTTP/1.1 keep-alive) and reused, one per thread at a time and at most
MAX_IDLE idle ones per origin: a connection goes back to the pool only after an exchange whose
answer was read to its end and that the server did not ask to close; any error closes it. A
request on a reused connection that the server had meanwhile closed is sent again once on a new
one (its body rewound), before anything of the answer was read.
Plain http is spoken only to local registries and to those given with --insecure, also when a
redirect or an upload Location points elsewhere; credentials never cross to another origin
(scheme, host or port) on a redirect.
HTTP/1.1 itself is smith.registry.http11 (not http.client, whose imports cost a short push ~22 ms);
ssl is imported only when a registry is spoken to over TLS: a local registry is asked in plain
http first (see Transport._probe), so pushing to one never loads it."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import _socket
import heapq
import itertools
import sys
import threading
import time

from smith.errors import SmithError
from smith.registry import http11, urls
from smith.text import printable  # noqa: F401  (text from a server, safe to print; used as transport.printable)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl  # imported at the first https connection: a plain-http push never pays for it
    from typing import BinaryIO, Callable, Dict, List, Optional, Tuple, TypeVar, Union
    T = TypeVar("T")
    R = TypeVar("R")
    Body = Union[None, bytes, BinaryIO]

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
RETRY_STATUSES = (429, 500, 502, 503, 504)
IO_BLOCK = 1 << 20
SEND_BLOCK = 64 << 10  # progress of an upload is counted per block sent
MAX_BODY = 4 << 20  # distribution refuses manifests above 4 MiB, so nothing we keep is larger
MAX_ERROR_BODY = 64 << 10  # what is kept of a non-2xx answer, for the error message
MAX_IDLE = 8  # idle keep-alive connections kept per origin
# What a reused keep-alive connection closed by the server meanwhile looks like.
STALE_ERRORS = (http11.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                ConnectionAbortedError)

DEFAULT_TIMEOUT = 60.0  # seconds a socket may stay silent
DEFAULT_DEADLINE = 3600.0  # seconds one exchange may take in all
DEFAULT_MIN_RATE = 4 << 10  # bytes/s, averaged over DEFAULT_RATE_WINDOW
DEFAULT_RATE_WINDOW = 30.0

# Headers that carry credentials: never sent to another origin than the one they were meant for.
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")


def parallel_map(fn: Callable[[T], R], items: List[T], jobs: int) -> List[R]:
    """[fn(i) for i in items], `jobs` at a time on plain threads (concurrent.futures costs a
    short push ~13 ms of imports: logging, traceback). After a failure no new item starts; the
    running ones finish and the first failure in item order is raised."""
    if jobs <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    results: List[Optional[R]] = [None] * len(items)
    errors: Dict[int, BaseException] = {}
    lock = threading.Lock()
    todo = iter(range(len(items)))

    def work() -> None:
        while True:
            with lock:
                if errors:
                    return
                n = next(todo, None)
            if n is None:
                return
            try:
                results[n] = fn(items[n])
            except BaseException as e:  # raised in the caller's thread below
                with lock:
                    errors[n] = e

    threads = [threading.Thread(target=work, name="smith-transfer", daemon=True)
               for _ in range(min(jobs, len(items)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[min(errors)]
    return results  # type: ignore[return-value]


class RetryableError(Exception):
    """A dropped connection or a 5xx/429 answer: the same request may succeed later."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status  # the HTTP status, None when the connection failed


class Response:
    def __init__(self, status: int, headers: http11.Headers, body: bytes, url: str):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)


def host_of(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:hostport.index("]")]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def is_local(hostport: str) -> bool:
    host = host_of(hostport).lower()
    return host in LOCAL_HOSTS or host.startswith("127.")


def origin(url: str) -> Tuple[str, str]:
    """(scheme, host:port) of a URL: credentials for one origin are never sent to another."""
    parts = urls.split(url)
    return parts.scheme, parts.netloc.lower()


class _Watchdog:
    """One daemon thread that calls each armed callback at its time (monotonic clock)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: List[Tuple[float, int]] = []
        self._live: Dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def arm(self, when: float, callback: Callable[[], None]) -> int:
        with self._cond:
            handle = next(self._ids)
            self._live[handle] = callback
            heapq.heappush(self._heap, (when, handle))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="smith-registry-watchdog")
                self._thread.start()
            self._cond.notify()
            return handle

    def disarm(self, handle: int) -> None:
        with self._cond:
            self._live.pop(handle, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                when, handle = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                callback = self._live.pop(handle)
            try:
                callback()
            except Exception:  # a watchdog that dies would leave every later exchange unbounded
                pass


_WATCHDOG = _Watchdog()


class _Guard:
    """The deadline and the minimum rate of one exchange. When either is broken, the watchdog
    shuts the socket down and leaves the reason in `expired`."""

    def __init__(self, transport: "Transport"):
        self.transport = transport
        now = time.monotonic()
        self.deadline = now + transport.deadline
        self.phase = "connecting"  # then "sending", "waiting" (for the answer), "receiving"
        self.moved = 0  # bytes sent + received
        self.window_start, self.window_moved = now, 0
        self.expired: Optional[str] = None
        # A dup of the connection's socket, held until finish(): shutting it down stops the
        # exchange, and it can never name another connection (its fd stays ours till then).
        self._dup: Optional[_socket.socket] = None
        self._lock = threading.Lock()
        self._done = False
        self._handle = _WATCHDOG.arm(self._next(now), self._check)

    def remaining(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    def _next(self, now: float) -> float:
        if self.transport.min_rate > 0:
            return min(self.deadline, self.window_start + self.transport.rate_window)
        return self.deadline

    def connected(self, sock: _socket.socket) -> _socket.socket:
        with self._lock:  # a dup of the descriptor, also of a TLS socket (kept alive)
            self._dup = _socket.socket(fileno=_socket.dup(sock.fileno()))
        self.phase = "sending"
        self.window_start, self.window_moved = time.monotonic(), self.moved
        return sock

    def sent(self, n: int) -> None:
        self.moved += n

    def request_sent(self) -> None:
        self.phase = "waiting"

    def received(self, n: int) -> None:
        if self.phase == "waiting":  # the first byte of the answer: its rate is measured anew
            self.phase = "receiving"
            self.window_start, self.window_moved = time.monotonic(), self.moved
        self.moved += n

    def _check(self) -> None:
        with self._lock:
            if self._done:
                return
            now = time.monotonic()
            t = self.transport
            if now >= self.deadline:
                return self._stop("took longer than %g s, the deadline of one request "
                                  "(--deadline)" % t.deadline)
            if t.min_rate > 0:
                if self.phase == "waiting":  # silence while the server works: `timeout` bounds it
                    self.window_start, self.window_moved = now, self.moved
                elif now - self.window_start >= t.rate_window:
                    moved, elapsed = self.moved - self.window_moved, now - self.window_start
                    if moved < t.min_rate * elapsed:
                        doing = {"connecting": "connecting", "sending": "sending the request",
                                 "receiving": "receiving the answer"}[self.phase]
                        return self._stop(
                            "too slow: %d bytes in %.0f s while %s, below the minimum of %g "
                            "KiB/s (--min-rate)" % (moved, elapsed, doing, t.min_rate / 1024))
                    self.window_start, self.window_moved = now, self.moved
            self._handle = _WATCHDOG.arm(self._next(now), self._check)

    def _stop(self, reason: str) -> None:
        self.expired = reason
        if self._dup is not None:
            try:  # shutdown(2) acts on the connection: a read or send blocked on it returns
                self._dup.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def finish(self) -> None:
        with self._lock:
            self._done = True
            _WATCHDOG.disarm(self._handle)
            if self._dup is not None:
                self._dup.close()
                self._dup = None


class _Connection:
    """One keep-alive connection: connected (and TLS-wrapped) at its first request. The guard
    of the exchange under way counts what it sends and receives."""

    def __init__(self, scheme: str, hostport: str, timeout: float,
                 context: Optional["ssl.SSLContext"], guard: _Guard):
        self.host, self.port = http11.split_hostport(hostport, 443 if scheme == "https" else 80)
        self.hostport, self.timeout, self.context, self.guard = hostport, timeout, context, guard
        self.sock: Optional[_socket.socket] = None
        self._response: Optional[http11.RawResponse] = None

    def _recv(self, n: int) -> bytes:
        data = self.sock.recv(n)  # type: ignore[union-attr]
        if data:
            self.guard.received(len(data))
        return data

    def _send(self, data: Union[bytes, memoryview]) -> None:
        view = memoryview(data)
        for start in range(0, len(view), SEND_BLOCK):
            piece = view[start:start + SEND_BLOCK]
            self.sock.sendall(piece)  # type: ignore[union-attr]
            self.guard.sent(len(piece))

    def request(self, method: str, target: str, body: Body, headers: Dict[str, str]) -> None:
        size = len(body) if isinstance(body, bytes) else None
        if body is not None and size is None and not any(
                k.lower() in ("content-length", "transfer-encoding") for k in headers):
            raise ValueError("a streamed request body needs a Content-Length header")
        head = http11.request_head(method, target, self.hostport, list(headers.items()), size)
        if self.sock is None:
            sock = self.guard.connected(http11.connect(self.host, self.port, self.timeout))
            if self.context is not None:
                try:
                    sock = self.context.wrap_socket(sock, server_hostname=self.host)
                except BaseException:
                    sock.close()
                    raise
            self.sock = sock
        if isinstance(body, bytes) and len(body) <= SEND_BLOCK:
            self._send(head + body)  # one write for a small request: one packet, one syscall
            return
        self._send(head)
        if isinstance(body, bytes):
            self._send(body)
        elif body is not None:  # a file: read until its end (it may hash what it reads)
            while True:
                block = body.read(SEND_BLOCK)
                if not block:
                    break
                self._send(block)

    def getresponse(self, method: str) -> http11.RawResponse:
        return http11.RawResponse(http11.Reader(self._recv), method)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


class Transport:
    def __init__(self, ca_file: Optional[str] = None, insecure: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, deadline: float = DEFAULT_DEADLINE,
                 min_rate: float = DEFAULT_MIN_RATE, rate_window: float = DEFAULT_RATE_WINDOW):
        """`timeout`: seconds a socket may stay silent; `deadline`: seconds one exchange may take;
        `min_rate`: bytes/s over each `rate_window` seconds while bytes flow (0: no minimum)."""
        if not (timeout > 0 and deadline > 0 and min_rate >= 0 and rate_window > 0):
            raise SmithError("timeout, deadline and rate window must be positive and the minimum "
                             "rate not negative")
        self.ca_file, self.insecure, self.timeout = ca_file, insecure, timeout
        self.deadline, self.min_rate, self.rate_window = deadline, min_rate, rate_window
        self._schemes: Dict[str, str] = {}
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()  # held while a registry's scheme is probed
        # Loading the system CAs costs ~0.1 s: done at the first verified TLS connection (or now
        # when a CA file is given, so a bad one fails at once), never for a plain-http registry.
        self._context_value: Optional["ssl.SSLContext"] = None
        if ca_file:
            self._verified_context()
        self._idle: Dict[Tuple[str, str], List[_Connection]] = {}
        self.connections_opened = 0  # new TCP connections (keep-alive reuse is not counted)

    def _verified_context(self) -> "ssl.SSLContext":
        with self._lock:
            if self._context_value is not None:
                return self._context_value
        import ssl
        context = ssl.create_default_context()
        if self.ca_file:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise SmithError("CA file %s could not be loaded (%s); give a PEM certificate"
                                 % (self.ca_file, e))
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with self._lock:
            if self._context_value is None:
                self._context_value = context
            return self._context_value

    @staticmethod
    def _probe_context() -> "ssl.SSLContext":
        """Only for the scheme probe of a local (or --insecure) registry: does it speak TLS at
        all? Nothing but `GET /v2/` without credentials goes over it, and its connection is
        closed, never kept: the requests that follow use the verified context."""
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def plain_http_ok(self, hostport: str) -> bool:
        """Plain http is for registries on this machine, or ones the user named --insecure."""
        return self.insecure or is_local(hostport)

    def base_url(self, hostport: str) -> str:
        """https, except that local registries (and --insecure ones) may answer in plain http.
        Probed once per registry: the workers of a push that ask at the same time wait for the
        first one's answer (not one probe per thread)."""
        with self._lock:
            scheme = self._schemes.get(hostport)
        if scheme is None:
            with self._probe_lock:
                with self._lock:
                    scheme = self._schemes.get(hostport)
                if scheme is None:
                    scheme = "https"
                    if self.plain_http_ok(hostport):
                        scheme = self._probe(hostport)
                    with self._lock:
                        self._schemes[hostport] = scheme
        return "%s://%s" % (scheme, hostport)

    def _probe(self, hostport: str) -> str:
        """The scheme of a registry that may speak plain http. A local one is asked in plain
        http first: the question (`GET /v2/`) carries no credentials, its connection is kept for
        the requests that follow, and ssl is never loaded for it. A TLS server answers it with
        400 (Go's "Client sent an HTTP request to an HTTPS server", nginx's "The plain HTTP
        request was sent to HTTPS port"), with bytes that are not HTTP, or by closing: then TLS
        is tried. A registry on another machine given --insecure is asked in TLS first, as
        docker and skopeo do."""
        if is_local(hostport):
            try:
                if self.request("GET", "http://%s/v2/" % hostport, max_redirects=0).status != 400:
                    return "http"
            except (SmithError, RetryableError):
                pass
        try:
            self.request("GET", "https://%s/v2/" % hostport, probing=True)
            return "https"
        except _PlainHttp:
            return "http"

    def request(self, method: str, url: str, headers: Optional[Dict[str, str]] = None,
                body: Body = None, sink: Optional[Callable[[bytes], None]] = None,
                max_redirects: int = 5, probing: bool = False,
                limit: Optional[int] = None) -> Response:
        """Send once, following redirects. With `sink`, a 2xx body is streamed to it instead
        of being kept in memory. A 2xx body longer than `limit` bytes is an error, found at
        `limit` + 1 bytes."""
        headers = dict(headers or {})
        headers.setdefault("User-Agent", "smith-registry-client")
        for _ in range(max_redirects + 1):
            try:
                resp = self._send_once(method, url, headers, body, sink, limit, probing)
            except _PlainHttp:
                if probing:
                    raise
                raise SmithError("%s answers in plain http; only local registries may do that "
                                 "unless you pass --insecure" % urls.split(url).netloc)
            if resp.status in (301, 302, 303, 307, 308) and resp.header("Location"):
                new_url = urls.join(url, resp.header("Location") or "")
                if origin(new_url) != origin(url):
                    # Never hand our credentials to blob storage, nor send them in clear text
                    # after a redirect from https to http.
                    for name in list(headers):
                        if name.lower() in CREDENTIAL_HEADERS:
                            del headers[name]
                if resp.status == 303:
                    method, body = "GET", None
                url = new_url
                continue
            return resp
        raise SmithError("%s %s: more than %d redirects" % (method, url, max_redirects))

    def _connection(self, parts: urls.Parts, guard: _Guard, probing: bool = False
                    ) -> _Connection:
        url = "%s://%s%s" % (parts.scheme, parts.netloc, parts.path)
        context: Optional["ssl.SSLContext"] = None
        if parts.scheme == "https":
            context = self._probe_context() if probing else self._verified_context()
        elif parts.scheme == "http":
            if not self.plain_http_ok(parts.netloc):
                raise SmithError("%s: refusing plain http to %s: only local registries and ones "
                                 "given with --insecure are reached without TLS" % (
                                     printable(url), printable(parts.netloc)))
        else:
            raise SmithError("%s: unsupported URL from the registry (only http and https)"
                             % printable(url))
        try:
            return _Connection(parts.scheme, parts.netloc, min(self.timeout, guard.remaining()),
                               context, guard)
        except ValueError as e:
            raise SmithError("%s: unsupported URL from the registry (%s)"
                             % (printable(url), printable(str(e)))) from None

    # ---- keep-alive pool -----------------------------------------------------------------
    def _checkout(self, key: Tuple[str, str]) -> Optional[_Connection]:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _checkin(self, key: Tuple[str, str], conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections (the transport stays usable: it opens new ones)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _send_once(self, method: str, url: str, headers: Dict[str, str], body: Body,
                   sink: Optional[Callable[[bytes], None]], limit: Optional[int],
                   probing: bool = False) -> Response:
        parts = urls.split(url)
        key = (parts.scheme, parts.netloc)
        if probing:  # a connection of its own, closed after the answer
            return self._exchange(method, url, parts, key, None, headers, body, sink, limit,
                                  reused=False, probing=True)
        conn = self._checkout(key)
        if conn is not None:
            start = body.tell() if hasattr(body, "seek") and hasattr(body, "tell") else None
            rewindable = body is None or isinstance(body, bytes) or start is not None
            try:
                return self._exchange(method, url, parts, key, conn, headers, body, sink, limit,
                                      reused=rewindable)
            except _Stale:
                if start is not None:
                    body.seek(start)  # type: ignore[union-attr]
        return self._exchange(method, url, parts, key, None, headers, body, sink, limit,
                              reused=False)

    def _exchange(self, method: str, url: str, parts: urls.Parts,
                  key: Tuple[str, str], conn: Optional[_Connection],
                  headers: Dict[str, str], body: Body, sink: Optional[Callable[[bytes], None]],
                  limit: Optional[int], reused: bool, probing: bool = False) -> Response:
        """One request and its answer on `conn` (a kept-alive one) or a new connection. With
        `reused`, a connection the server had closed raises _Stale so the caller resends."""
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        guard = _Guard(self)
        keep = False
        try:
            if conn is None:
                conn = self._connection(parts, guard, probing)
                with self._lock:
                    self.connections_opened += 1
            else:
                conn.guard = guard
                if conn.sock is not None:
                    conn.sock.settimeout(min(self.timeout, guard.remaining()))
                    guard.connected(conn.sock)
        except BaseException:
            guard.finish()
            if conn is not None:
                conn.close()
            raise
        try:
            conn.request(method, path, body, headers)
            guard.request_sent()
            raw = conn.getresponse(method)
            resp = Response(raw.status, raw.headers,
                            self._read_body(method, url, raw, sink, limit), url)
            if guard.expired:  # the shutdown may look like the end of an unsized body
                raise RetryableError("%s %s: %s" % (method, url, guard.expired))
            keep = raw.reusable() and not probing
        except SmithError:
            raise
        except RetryableError:
            raise
        except Exception as e:
            if guard.expired:
                raise RetryableError("%s %s: %s" % (method, url, guard.expired)) from None
            if reused and isinstance(e, STALE_ERRORS) and guard.phase != "receiving":
                raise _Stale() from None
            raise self._translate(method, url, parts, e) from None
        finally:
            guard.finish()
            if keep:
                self._checkin(key, conn)
            else:
                conn.close()
        if resp.status in RETRY_STATUSES:
            raise RetryableError("%s %s: HTTP %d %s" % (
                method, url, resp.status, printable(resp.body)), resp.status)
        return resp

    @staticmethod
    def _read_body(method: str, url: str, raw: http11.RawResponse,
                   sink: Optional[Callable[[bytes], None]], limit: Optional[int]) -> bytes:
        """The body (b"" when streamed to `sink`), read block by block up to its cap."""
        if method == "HEAD":
            return b""
        declared = raw.length
        success = 200 <= raw.status < 300
        if success:
            cap = limit if sink is not None else min(MAX_BODY if limit is None else limit,
                                                     MAX_BODY)
            if cap is not None and declared is not None and declared > cap:
                raise SmithError("%s %s: the answer is %d bytes long (Content-Length), more than "
                                 "the %d expected; refusing it" % (method, url, declared, cap))
        else:
            cap = MAX_ERROR_BODY
        kept: List[bytes] = []
        received = 0
        while True:
            want = IO_BLOCK if cap is None else min(IO_BLOCK, cap + 1 - received)
            chunk = raw.read(want)
            if not chunk:
                break
            received += len(chunk)
            if cap is not None and received > cap:
                if not success:  # enough of an error message
                    kept.append(chunk[:len(chunk) - (received - cap)])
                    return b"".join(kept)
                raise SmithError("%s %s: the answer is longer than the %d bytes expected; "
                                 "stopped reading at %d" % (method, url, cap, received))
            if sink is not None and success:
                sink(chunk)
            else:
                kept.append(chunk)
        return b"".join(kept)

    def _translate(self, method: str, url: str, parts: urls.Parts,
                   e: Exception) -> Exception:
        ssl = sys.modules.get("ssl")  # not imported: no TLS was spoken, no TLS error to name
        if ssl is not None and isinstance(e, ssl.SSLCertVerificationError):
            return SmithError("TLS certificate of %s is not trusted (%s); pass --ca FILE with the "
                              "CA that signed it (or --insecure to skip the check)"
                              % (parts.netloc, e.verify_message or e))
        if ssl is not None and isinstance(e, ssl.SSLError):
            if "WRONG_VERSION_NUMBER" in str(e).upper() or "wrong version" in str(e):
                return _PlainHttp(str(e))
            return SmithError("TLS with %s failed: %s" % (parts.netloc, e))
        if isinstance(e, http11.ProtocolError):
            return SmithError("%s %s: malformed answer from %s: %s; is it a registry?" % (
                method, url, printable(parts.netloc), printable(str(e))))
        if isinstance(e, (ConnectionError, _socket.timeout, TimeoutError)):
            return RetryableError("%s %s: %s: %s" % (method, url, type(e).__name__,
                                                     printable(str(e))))
        if isinstance(e, OSError):  # e.g. name resolution; not worth retrying
            return SmithError("cannot reach %s: %s" % (parts.netloc, e))
        if isinstance(e, (ValueError, UnicodeError)):  # e.g. a header value with CR/LF
            return SmithError("%s %s: malformed answer: %s" % (method, url, printable(str(e))))
        return e


class _Stale(Exception):
    """A kept-alive connection the server had closed before our request reached it."""


class _PlainHttp(Exception):
    """The server answered a TLS hello in plain HTTP."""
