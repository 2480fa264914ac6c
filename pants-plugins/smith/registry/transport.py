"""One HTTP(S) exchange with a registry: TLS set-up, plain-http fallback for local registries,
redirects, and the errors worth retrying. Retrying itself is done by the caller (client.py),
which knows how to restart an operation (e.g. reopen the file being uploaded)."""
import http.client
import socket
import ssl
import threading
import urllib.parse
from typing import BinaryIO, Callable, Dict, Optional, Union

from smith.errors import SmithError

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
RETRY_STATUSES = (429, 500, 502, 503, 504)
IO_BLOCK = 1 << 20
MAX_BODY = 4 << 20  # distribution refuses manifests above 4 MiB, so nothing we keep is larger


class RetryableError(Exception):
    """A dropped connection or a 5xx/429 answer: the same request may succeed later."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status  # the HTTP status, None when the connection failed


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes, url: str):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)


def host_of(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:hostport.index("]")]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def is_local(hostport: str) -> bool:
    host = host_of(hostport)
    return host in LOCAL_HOSTS or host.startswith("127.")


Body = Union[None, bytes, BinaryIO]


class Transport:
    def __init__(self, ca_file: Optional[str] = None, insecure: bool = False,
                 timeout: float = 60.0):
        self.ca_file, self.insecure, self.timeout = ca_file, insecure, timeout
        self._context = ssl.create_default_context()
        if ca_file:
            try:
                self._context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as e:
                raise SmithError("CA file %s could not be loaded (%s); give a PEM certificate"
                                 % (ca_file, e))
        if insecure:
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE
        self._schemes: Dict[str, str] = {}
        self._lock = threading.Lock()

    def base_url(self, hostport: str) -> str:
        """https, except that local registries (and --insecure ones) may answer in plain http."""
        with self._lock:
            scheme = self._schemes.get(hostport)
        if scheme is None:
            scheme = "https"
            if is_local(hostport) or self.insecure:
                scheme = self._probe(hostport)
            with self._lock:
                self._schemes[hostport] = scheme
        return "%s://%s" % (scheme, hostport)

    def _probe(self, hostport: str) -> str:
        try:
            self.request("GET", "https://%s/v2/" % hostport, probing=True)
            return "https"
        except _PlainHttp:
            return "http"

    def request(self, method: str, url: str, headers: Optional[Dict[str, str]] = None,
                body: Body = None, sink: Optional[Callable[[bytes], None]] = None,
                max_redirects: int = 5, probing: bool = False) -> Response:
        """Send once, following redirects. With `sink`, a 2xx body is streamed to it instead
        of being kept in memory."""
        headers = dict(headers or {})
        headers.setdefault("User-Agent", "smith-registry-client")
        for _ in range(max_redirects + 1):
            try:
                resp = self._send_once(method, url, headers, body, sink)
            except _PlainHttp:
                if probing:
                    raise
                raise SmithError("%s answers in plain http; only local registries may do that "
                                 "unless you pass --insecure" % urllib.parse.urlsplit(url).netloc)
            if resp.status in (301, 302, 303, 307, 308) and resp.header("Location"):
                new_url = urllib.parse.urljoin(url, resp.header("Location"))
                if urllib.parse.urlsplit(new_url).netloc != urllib.parse.urlsplit(url).netloc:
                    headers.pop("Authorization", None)  # never hand our token to blob storage
                if resp.status == 303:
                    method, body = "GET", None
                url = new_url
                continue
            return resp
        raise SmithError("%s %s: more than %d redirects" % (method, url, max_redirects))

    def _connection(self, parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.netloc, timeout=self.timeout,
                                               context=self._context, blocksize=IO_BLOCK)
        if parts.scheme == "http":
            return http.client.HTTPConnection(parts.netloc, timeout=self.timeout,
                                              blocksize=IO_BLOCK)
        raise SmithError("unsupported URL %s from the registry" % urllib.parse.urlunsplit(parts))

    def _send_once(self, method: str, url: str, headers: Dict[str, str], body: Body,
                   sink: Optional[Callable[[bytes], None]]) -> Response:
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn = self._connection(parts)
        try:
            conn.request(method, path, body=body, headers=headers)
            raw = conn.getresponse()
            received = 0
            if sink is not None and 200 <= raw.status < 300:
                while True:
                    chunk = raw.read(IO_BLOCK)
                    if not chunk:
                        break
                    received += len(chunk)
                    sink(chunk)
                data = b""
            else:
                data = raw.read(MAX_BODY + 1) if method != "HEAD" else b""
                received = len(data)
            # read(amt) returns short data, not IncompleteRead, when the peer hangs up early.
            expected = raw.getheader("Content-Length")
            if (method != "HEAD" and expected and expected.isdigit() and received < int(expected)
                    and received <= MAX_BODY):
                raise http.client.IncompleteRead(b"", int(expected) - received)
            resp = Response(raw.status, raw.headers, data, url)
        except ssl.SSLCertVerificationError as e:
            raise SmithError("TLS certificate of %s is not trusted (%s); pass --ca FILE with the "
                             "CA that signed it (or --insecure to skip the check)"
                             % (parts.netloc, e.verify_message or e))
        except ssl.SSLError as e:
            if "WRONG_VERSION_NUMBER" in str(e).upper() or "wrong version" in str(e):
                raise _PlainHttp(str(e))
            raise SmithError("TLS with %s failed: %s" % (parts.netloc, e))
        except (ConnectionError, http.client.HTTPException, socket.timeout, TimeoutError) as e:
            raise RetryableError("%s %s: %s: %s" % (method, url, type(e).__name__, e))
        except OSError as e:  # e.g. name resolution; not worth retrying
            raise SmithError("cannot reach %s: %s" % (parts.netloc, e))
        finally:
            conn.close()
        if resp.status in RETRY_STATUSES:
            raise RetryableError("%s %s: HTTP %d %s" % (
                method, url, resp.status, resp.body[:300].decode("utf-8", "replace")),
                resp.status)
        return resp


class _PlainHttp(Exception):
    """The server answered a TLS hello in plain HTTP."""
