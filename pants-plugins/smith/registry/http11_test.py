"""The HTTP/1.1 answer parser against hostile input: every answer is read whole or refused with
ProtocolError / IncompleteRead, whatever the pieces the bytes arrive in."""
from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smith.registry import http11
from smith.registry.http11 import IncompleteRead, ProtocolError, RemoteDisconnected


def feeder(data: bytes, cuts: Optional[List[int]] = None):
    """recv() over `data`, returning it in the pieces `cuts` gives (one byte each by default)."""
    pieces, last = [], 0
    for cut in sorted(set(cuts if cuts is not None else range(1, len(data)))):
        if 0 < cut < len(data):
            pieces.append(data[last:cut])
            last = cut
    pieces.append(data[last:])
    pieces = [p for p in pieces if p]

    def recv(n: int) -> bytes:
        if not pieces:
            return b""
        piece = pieces.pop(0)
        if len(piece) > n:
            pieces.insert(0, piece[n:])
            piece = piece[:n]
        return piece
    return recv


def read_all(data: bytes, method: str = "GET", cuts=None, amt: int = 7):
    resp = http11.RawResponse(http11.Reader(feeder(data, cuts)), method)
    body = []
    while True:
        piece = resp.read(amt)
        if not piece:
            break
        body.append(piece)
    assert resp.isclosed()
    return resp, b"".join(body)


OK_ANSWERS = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello", b"hello", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer: x\r\n\r\n", b"hello", False),
    (b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil close", b"until close", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", b"",
     False),
    (b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", b"", True),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}", b"{}", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc", b"abc", False),
]


@pytest.mark.parametrize("data,body,closes", OK_ANSWERS)
def test_answers_are_read_whole_at_every_split(data, body, closes):
    for cut in range(len(data) + 1):
        resp, got = read_all(data, cuts=[cut])
        assert (got, resp.will_close) == (body, closes)
    resp, got = read_all(data)  # one byte per recv
    assert got == body


def test_head_has_no_body_whatever_content_length_says():
    resp, body = read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HEAD")
    assert (resp.status, resp.length, body, resp.will_close) == (200, 1000 * 0, b"", False)
    assert resp.headers.get("content-length") == "1000"


def test_a_keep_alive_answer_leaves_the_next_one_unread():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 404 x\r\n\r\n"
    reader = http11.Reader(feeder(data, [3]))  # the next answer arrives with this one
    first = http11.RawResponse(reader, "GET")
    assert first.read(100) == b"ab" and first.isclosed()
    assert not first.reusable()  # bytes after an answer: the connection is not kept
    assert http11.RawResponse(reader, "GET").status == 404
    alone = http11.RawResponse(http11.Reader(feeder(data[:40], [])), "GET")
    assert alone.read(100) == b"ab" and alone.reusable()


BAD_HEADS = {
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    "no-colon": b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n",
    "empty-name": b"HTTP/1.1 200 OK\r\n: v\r\n\r\n",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n",
    "cr-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "bare-lf-in-headers": b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n",
    "http-2": b"HTTP/2 200 OK\r\n\r\n",
    "status-4-digits": b"HTTP/1.1 2000 OK\r\n\r\n",
    "status-600": b"HTTP/1.1 600 OK\r\n\r\n",
    "status-not-digits": b"HTTP/1.1 2x0 OK\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "switching-protocols": b"HTTP/1.1 101 Switching\r\nUpgrade: h2c\r\n\r\n",
    "negative-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "plus-length": b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
    "hex-length": b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
    "overflowing-length": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "conflicting-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "conflicting-list": b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
    "empty-length": b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "te-gzip-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "te-chunked-twice": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n",
    "te-and-length": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    "too-many-headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
    "huge-line": b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * (9 << 10) + b"\r\n\r\n",
    "huge-line-no-newline": b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * (100 << 10),
    "huge-headers": b"HTTP/1.1 200 OK\r\n" + (b"X-A: " + b"a" * 8000 + b"\r\n") * 9 + b"\r\n",
    "endless-interim": b"HTTP/1.1 100 Continue\r\n\r\n" * 12,
}


@pytest.mark.parametrize("name", sorted(BAD_HEADS))
def test_malformed_heads_are_refused(name):
    with pytest.raises(ProtocolError):
        read_all(BAD_HEADS[name], cuts=[5, 40])


BAD_CHUNKS = {
    "not-hex": b"zz\r\n",
    "negative": b"-1\r\n",
    "empty-size": b"\r\n",
    "too-many-digits": b"1" + b"0" * 16 + b"\r\n",
    "huge-size-line": b"1;" + b"e" * 2000 + b"\r\n",
    "space-in-size": b"1 2\r\nab\r\n0\r\n\r\n",
    "data-longer-than-size": b"2\r\nabc\r\n0\r\n\r\n",
    "size-without-crlf": b"2\nab\r\n0\r\n\r\n",
    "trailer-obs-fold": b"0\r\nX: a\r\n b\r\n\r\n",
    "huge-trailers": b"0\r\n" + (b"X: " + b"a" * 4000 + b"\r\n") * 5 + b"\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_CHUNKS))
def test_malformed_chunks_are_refused(name):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with pytest.raises(ProtocolError):
        read_all(head + BAD_CHUNKS[name])


EARLY_ENDS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nContent-Len",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n",
]


@pytest.mark.parametrize("data", EARLY_ENDS)
def test_an_early_end_is_an_incomplete_read(data):
    with pytest.raises(IncompleteRead):
        read_all(data, cuts=[3])


def test_nothing_at_all_is_a_remote_disconnect():
    with pytest.raises(RemoteDisconnected):
        read_all(b"")


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), chunk_sizes=st.lists(st.integers(1, 50), max_size=10),
       cuts=st.lists(st.integers(0, 600), max_size=20), amt=st.integers(1, 100))
def test_any_chunking_and_any_split_gives_back_the_body(body, chunk_sizes, cuts, amt):
    chunks, rest = [], body
    for size in chunk_sizes + [len(body)]:
        if rest:
            chunks.append(b"%x;x=y\r\n%s\r\n" % (min(size, len(rest)), rest[:size]))
            rest = rest[size:]
    data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n" + b"".join(chunks)
            + b"0\r\n\r\n")
    assert read_all(data, cuts=cuts, amt=amt)[1] == body
    sized = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert read_all(sized, cuts=cuts, amt=amt)[1] == body


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_any_bytes_are_an_answer_or_a_clear_refusal(data, cuts):
    try:
        read_all(b"HTTP/1.1 200 OK\r\n" + data, cuts=cuts)
    except (ProtocolError, IncompleteRead):
        pass


@settings(max_examples=300, deadline=None)
@given(name=st.text(st.characters(blacklist_characters=":\r\n", blacklist_categories=("Cs",)),
                   min_size=1, max_size=20),
       value=st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                     max_size=40))
def test_a_header_line_is_kept_exactly_or_refused(name, value):
    line = ("%s: %s" % (name, value)).encode("utf-8")
    data = b"HTTP/1.1 204 No\r\n" + line + b"\r\n\r\n"
    try:
        resp, _ = read_all(data, cuts=[20])
    except (ProtocolError, IncompleteRead):
        return
    assert resp.headers.items() == [(name, value.strip(" \t").encode("utf-8").decode("latin-1"))]
    assert "\0" not in value and name.strip(" \t") == name


def test_requests_refuse_to_be_split():
    with pytest.raises(ValueError):
        http11.request_head("GET", "/v2/ HTTP/1.1\r\nX: y", "h", [], None)
    with pytest.raises(ValueError):
        http11.request_head("GET", "/v2/", "h", [("X-A", "a\r\nEvil: 1")], None)
    head = http11.request_head("PUT", "/v2/?a=b", "[::1]:5000", [("X-A", "b")], None)
    assert head == (b"PUT /v2/?a=b HTTP/1.1\r\nHost: [::1]:5000\r\nX-A: b\r\n"
                    b"Accept-Encoding: identity\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("hostport,expected", [
    ("reg.io", ("reg.io", 443)), ("reg.io:5000", ("reg.io", 5000)), ("[::1]", ("::1", 443)),
    ("[::1]:5000", ("::1", 5000)), ("[fe80::1%eth0]:1", ("fe80::1%eth0", 1))])
def test_hostports(hostport, expected):
    assert http11.split_hostport(hostport, 443) == expected


@pytest.mark.parametrize("hostport", ["::1", "h:0", "h:65536", "h:x", "[::1", "[::1]x", ":5",
                                      "h:-1", "h:", "[]:5"])
def test_malformed_hostports_are_refused(hostport):
    if hostport == "h:":  # an empty port means the default, as in urllib
        assert http11.split_hostport(hostport, 80) == ("h", 80)
        return
    with pytest.raises(ValueError):
        http11.split_hostport(hostport, 443)


class OneAnswerServer:
    """A local server that answers every request with the same bytes, then closes."""

    def __init__(self, answer: bytes):
        import socket
        import threading
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.requests = 0

        def serve():
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    self.requests += 1
                    conn.sendall(answer)
        threading.Thread(target=serve, daemon=True).start()


@pytest.mark.parametrize("answer,expected", [
    (BAD_HEADS["te-and-length"] + b"5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding and Content-L"),
    (BAD_HEADS["obs-fold"], "folded header"),
    (BAD_HEADS["conflicting-lengths"], "conflicting Content-Length"),
])
def test_a_malformed_answer_is_a_clear_error_naming_the_registry_and_not_retried(answer,
                                                                                  expected):
    from smith.errors import SmithError
    from smith.registry.transport import Transport
    server = OneAnswerServer(answer)
    with pytest.raises(SmithError, match=r"GET http://%s/v2/: malformed answer from %s: .*%s" % (
            server.host, server.host, expected)):
        Transport().request("GET", "http://%s/v2/" % server.host)
    assert server.requests == 1
    server.sock.close()
