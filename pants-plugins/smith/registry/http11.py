"""A small HTTP/1.1 client connection on a plain socket (TLS is wrapped around it by the caller).

Why not http.client: importing it costs a short `smith push` ~22 ms (it pulls in email.parser),
more than a registry needs, and it accepts answers we would rather refuse. This speaks only what
registries speak: one request at a time on a kept-alive connection, bodies framed by
Content-Length, chunked, or the end of the connection.

Everything the server sends is bounded and checked; a malformed answer raises ProtocolError
(never silently re-framed): obs-folded or badly named header lines, NUL/CR/LF inside a value,
more than MAX_HEADERS lines or MAX_HEADER_BYTES in all, lines without CRLF or longer than
MAX_LINE, several Content-Lengths that disagree or one that is not a plain decimal, a
Transfer-Encoding other than `chunked` or one together with Content-Length, chunk sizes that are
not hex or are too long, trailers over MAX_TRAILER_BYTES.

Connections are made with the C module _socket directly: socket.py (and the enum module it
loads) costs a short push ~8M instructions, and a plain-http registry needs nothing of it."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterator, List, Optional, Tuple

MAX_LINE = 8 << 10  # a status or header line, CRLF included
MAX_HEADERS = 100
MAX_HEADER_BYTES = 64 << 10  # status line and all header lines
MAX_CHUNK_LINE = 1 << 10  # a chunk-size line with its extensions
MAX_CHUNK_SIZE = (1 << 62) - 1  # also bounds Content-Length: 16 hex / 19 decimal digits
MAX_TRAILER_BYTES = 16 << 10
MAX_INTERIM = 10  # 1xx answers skipped before the real one
RECV_BLOCK = 1 << 20
METHODS_WITH_BODY = ("PATCH", "POST", "PUT")
# RFC 9110 tchar: what a header name may be made of.
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class ProtocolError(ValueError):
    """The answer breaks HTTP/1.1 (or our bounds on it): not worth retrying."""


class RemoteDisconnected(ConnectionResetError):
    """The connection closed before the first byte of an answer (a stale keep-alive)."""


class IncompleteRead(ConnectionError):
    """The connection closed in the middle of an answer."""


class Headers:
    """The header lines of an answer, looked up by name case-insensitively (first one wins)."""

    def __init__(self, items: List[Tuple[str, str]]):
        self._items = items

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        name = name.lower()
        for key, value in self._items:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str) -> List[str]:
        name = name.lower()
        return [v for k, v in self._items if k.lower() == name]

    def items(self) -> List[Tuple[str, str]]:
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, _ in self._items])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


class Reader:
    """Buffered reading of an answer from `recv(n)` (b"" at the end of the stream)."""

    def __init__(self, recv: Callable[[int], bytes]):
        self._recv = recv
        self._buf = bytearray()
        self.eof = False

    def _fill(self, want: int = RECV_BLOCK) -> bool:
        if self.eof:
            return False
        data = self._recv(want)
        if not data:
            self.eof = True
            return False
        self._buf += data
        return True

    def line(self, limit: int, what: str) -> Optional[bytes]:
        """One CRLF-terminated line without its CRLF; None at a clean end of stream."""
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                break
            if len(self._buf) >= limit:
                raise ProtocolError("%s longer than %d bytes" % (what, limit))
            start = len(self._buf)
            if not self._fill():
                if not self._buf:
                    return None
                raise IncompleteRead("the connection closed in the middle of %s" % what)
        if end + 1 > limit:
            raise ProtocolError("%s longer than %d bytes" % (what, limit))
        if end == 0 or self._buf[end - 1] != 13:
            raise ProtocolError("%s does not end in CRLF" % what)
        line = bytes(self._buf[:end - 1])
        del self._buf[:end + 1]
        return line

    def pending(self) -> int:
        return len(self._buf)

    def some(self, n: int) -> bytes:
        """Up to n (> 0) bytes, b"" only at the end of the stream."""
        if not self._buf:
            if self.eof:
                return b""
            data = self._recv(min(n, RECV_BLOCK))
            if not data:
                self.eof = True
            return data
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def _parse_header(line: bytes) -> Tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise ProtocolError("a folded header line (obs-fold): %r" % line[:80])
    name, colon, value = line.partition(b":")
    if not colon or not name or not all(c in _TCHAR for c in name):
        raise ProtocolError("a malformed header line: %r" % line[:80])
    value = value.strip(b" \t")
    if b"\0" in value or b"\r" in value or b"\n" in value:
        raise ProtocolError("header %s has NUL, CR or LF in its value" % name.decode("ascii"))
    return name.decode("ascii"), value.decode("latin-1")


def read_headers(reader: Reader, used: int, max_bytes: int, max_count: int,
                 what: str = "a header line") -> Tuple[List[Tuple[str, str]], int]:
    """Header (or trailer) lines up to the empty line: (name, value) pairs and bytes used."""
    items: List[Tuple[str, str]] = []
    while True:
        line = reader.line(min(MAX_LINE, max_bytes - used + 1), what)
        if line is None:
            raise IncompleteRead("the connection closed in the middle of the headers")
        used += len(line) + 2
        if used > max_bytes:
            raise ProtocolError("the headers are longer than %d bytes" % max_bytes)
        if not line:
            return items, used
        if len(items) >= max_count:
            raise ProtocolError("more than %d header lines" % max_count)
        items.append(_parse_header(line))


def _status_line(line: bytes) -> Tuple[str, int, str]:
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit() \
            or not 100 <= int(code) <= 599 or b"\0" in reason or b"\r" in reason:
        raise ProtocolError("not an HTTP/1.x status line: %r" % line[:80])
    return version.decode("ascii"), int(code), reason.decode("latin-1")


def _content_length(headers: Headers) -> Optional[int]:
    values = [v.strip() for field in headers.get_all("Content-Length") for v in field.split(",")]
    if not values:
        return None
    if any(v != values[0] for v in values):
        raise ProtocolError("conflicting Content-Length headers: %s" % ", ".join(values)[:200])
    value = values[0]
    if not (value.isascii() and value.isdigit()) or len(value) > 19 \
            or int(value) > MAX_CHUNK_SIZE:
        raise ProtocolError("Content-Length %r is not a length" % value[:40])
    return int(value)


def _chunked(headers: Headers) -> bool:
    fields = headers.get_all("Transfer-Encoding")
    if not fields:
        return False
    codings = [c.strip().lower() for field in fields for c in field.split(",")]
    if codings != ["chunked"]:
        raise ProtocolError("Transfer-Encoding %r: only chunked is understood"
                            % ", ".join(fields)[:200])
    if headers.get_all("Content-Length"):
        raise ProtocolError("both Transfer-Encoding and Content-Length (a smuggling attempt?)")
    return True


class RawResponse:
    """An answer's status and headers, and its body read in pieces with read()."""

    def __init__(self, reader: Reader, method: str):
        self._reader = reader
        for _ in range(MAX_INTERIM + 1):
            line = reader.line(MAX_LINE, "the status line")
            if line is None:
                raise RemoteDisconnected("the server closed the connection without an answer")
            self.version, self.status, self.reason = _status_line(line)
            items, _ = read_headers(reader, len(line) + 2, MAX_HEADER_BYTES, MAX_HEADERS)
            self.headers = Headers(items)
            if self.status == 101:
                raise ProtocolError("101 Switching Protocols: no upgrade was asked for")
            if self.status >= 200:
                break
        else:
            raise ProtocolError("more than %d interim (1xx) answers" % MAX_INTERIM)
        tokens = [t.strip().lower() for t in ",".join(self.headers.get_all("Connection"))
                  .split(",")]
        if self.version == "HTTP/1.0":
            self.will_close = "keep-alive" not in tokens
        else:
            self.will_close = "close" in tokens
        chunked = _chunked(self.headers)
        length = _content_length(self.headers)
        self._chunk_left = 0  # bytes left in the current chunk
        self._in_chunks = False
        if method == "HEAD" or self.status in (204, 304):
            self.length: Optional[int] = 0
            self._chunked = False
        elif chunked:
            self.length, self._chunked = None, True
        else:
            self.length, self._chunked = length, False
            if length is None:  # the body ends when the connection does
                self.will_close = True
        self._left = self.length  # None: until the end (of chunks or of the connection)
        self._done = self._left == 0

    def getheader(self, name: str) -> Optional[str]:
        return self.headers.get(name)

    def isclosed(self) -> bool:
        """The whole body was read."""
        return self._done

    def reusable(self) -> bool:
        """The whole body was read, nothing came after it and the server keeps the connection
        open: it may serve another request (bytes after an answer would be read as the next)."""
        return self._done and not self.will_close and not self._reader.pending()

    def read(self, amt: int = RECV_BLOCK) -> bytes:
        """Up to `amt` bytes of the body; b"" at its end. An early end raises IncompleteRead."""
        if self._done or amt <= 0:
            return b""
        if self._chunked:
            return self._read_chunked(amt)
        want = amt if self._left is None else min(amt, self._left)
        data = self._reader.some(want)
        if self._left is None:
            if not data:
                self._done = True
            return data
        if not data:
            raise IncompleteRead("the connection closed with %d bytes of the body unread"
                                 % self._left)
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def _read_chunked(self, amt: int) -> bytes:
        if self._chunk_left == 0:
            if self._in_chunks:  # the CRLF after a chunk's data
                end = self._reader.line(2, "the end of a chunk")
                if end is None or end != b"":
                    raise ProtocolError("a chunk is longer than its size line says")
            size = self._chunk_size()
            self._in_chunks = True
            if size == 0:
                read_headers(self._reader, 0, MAX_TRAILER_BYTES, MAX_HEADERS, "a trailer line")
                self._done = True
                return b""
            self._chunk_left = size
        data = self._reader.some(min(amt, self._chunk_left))
        if not data:
            raise IncompleteRead("the connection closed in the middle of a chunk")
        self._chunk_left -= len(data)
        return data

    def _chunk_size(self) -> int:
        line = self._reader.line(MAX_CHUNK_LINE, "a chunk-size line")
        if line is None:
            raise IncompleteRead("the connection closed before the last chunk")
        digits = line.split(b";", 1)[0].rstrip(b" \t")
        if not digits or len(digits) > 16 or not all(c in _HEX for c in digits):
            raise ProtocolError("a malformed chunk size: %r" % line[:40])
        size = int(digits, 16)
        if size > MAX_CHUNK_SIZE:
            raise ProtocolError("a chunk of %d bytes" % size)
        return size


def split_hostport(hostport: str, default_port: int) -> Tuple[str, int]:
    """("host", port) of "host", "host:port", "[v6]" or "[v6]:port"; ValueError if malformed."""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[1:end], hostport[end + 1:]
        if end < 0 or not host or (rest and not rest.startswith(":")):
            raise ValueError("malformed host %r" % hostport)
        port = rest[1:]
    else:
        host, _, port = hostport.partition(":")
        if ":" in port or not host:
            raise ValueError("malformed host %r" % hostport)
    if not port:
        return host, default_port
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError("malformed port in %r" % hostport)
    return host, int(port)


def _clean(text: str, what: str) -> str:
    if any(c in text for c in "\r\n\0"):
        raise ValueError("%s contains CR, LF or NUL: %r" % (what, text[:80]))
    return text


def request_head(method: str, target: str, hostport: str, headers: List[Tuple[str, str]],
                 body_length: Optional[int]) -> bytes:
    """The request line and headers (Host first, Content-Length added for a sized body)."""
    if not target or any(ord(c) <= 32 or ord(c) == 127 for c in target):
        raise ValueError("a request target with spaces or control characters: %r" % target[:80])
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + hostport]
    names = set()
    for name, value in headers:
        if not name or not all(ord(c) < 128 and ord(c) in _TCHAR for c in name):
            raise ValueError("invalid header name %r" % name[:80])
        names.add(name.lower())
        lines.append("%s: %s" % (name, _clean(str(value), "header " + name)))
    if "accept-encoding" not in names:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in names and "transfer-encoding" not in names:
        if body_length is not None:
            lines.append("Content-Length: %d" % body_length)
        elif method in METHODS_WITH_BODY:
            lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _host_for_resolver(host: str) -> "str | bytes":
    """ASCII names go to getaddrinfo as bytes: given a str, it loads the idna codec
    (unicodedata, stringprep) for every name, even `127.0.0.1`."""
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        return host


def connect(host: str, port: int, timeout: float) -> _socket.socket:
    """A TCP connection to host:port, each address getaddrinfo gives tried in turn (what
    socket.create_connection does), TCP_NODELAY set: requests are written whole."""
    error: Optional[OSError] = None
    for family, kind, proto, _, address in _socket.getaddrinfo(
            _host_for_resolver(host), port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as e:
            sock.close()
            error = e
            continue
        if family in (_socket.AF_INET, _socket.AF_INET6):
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError("getaddrinfo returned no address for %s" % host)
