"""The registry client against hostile registries: an in-test HTTP(S) server on 127.0.0.1 that
answers what each test wants (tags posing as digests, blobs longer than their descriptors, bytes
dripped slowly, redirects from https to http, token realms in clear text, malformed JSON).
Every case must end in `smith pull: error: <url or ref>: <what is wrong>`, exit status 1, and
nothing left at the destination."""
import base64
import hashlib
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, strategies as st

from smith.errors import SmithError
from smith.registry import media_types
from smith.registry.client import RegistryClient
from smith.registry.credentials import Credentials
from smith.registry.descriptors import check_index, check_manifest
from smith.registry.digests import is_digest
from smith.testutil.local_registry import run_smith
from smith.registry.platforms import parse_platform
from smith.registry.pull import pull_image
from smith.registry.push import push_layout
from smith.registry.reference import parse_reference
from smith.testutil.sample_images import LayoutBuilder, layer_tar_gz, simple_layout
from smith.registry.transport import Transport
from smith.testutil.debian import require_tools, tool_env

AMD64 = parse_platform("linux/amd64")
CREDS = Credentials("smith", "s3cret", "test")
BASIC = "Basic " + base64.b64encode(b"smith:s3cret").decode()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def media_type_of(data):
    try:
        mt = json.loads(data).get("mediaType")
    except Exception:
        mt = None
    return mt if isinstance(mt, str) and mt.isprintable() else media_types.OCI_MANIFEST


def reply(req, status, body=b"", headers=None):
    req.send_response(status)
    for name, value in (headers or {}).items():
        req.send_header(name, value)
    if "Content-Length" not in (headers or {}):
        req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    if body and req.command != "HEAD":
        req.wfile.write(body)


class FakeRegistry:
    """Serves `manifests` (ref -> bytes) and `blobs` (digest -> bytes) like a registry; a test
    changes any answer with `routes[(method, path)] = handler(req)`. With `tls` (cert, key) the
    one port speaks both TLS and plain http (it peeks at the first byte), so a redirect can
    change the scheme and keep the host:port."""

    def __init__(self, tls=None, auth=None):
        self.manifests, self.blobs, self.routes = {}, {}, {}
        self.requests = []  # (scheme, method, path, Authorization)
        self.auth = auth  # None, or a handler answering requests without good credentials
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except (ConnectionError, ssl.SSLError, OSError):
                    self.close_connection = True

            def _any(self):
                scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
                fake.requests.append((scheme, self.command, self.path,
                                      self.headers.get("Authorization")))
                route = fake.routes.get((self.command, self.path.split("?")[0]))
                length = int(self.headers.get("Content-Length") or 0)
                big = length > (1 << 20) and route is not None
                self.body = self.rfile.read(length) if length and not big else b""
                if route:
                    return route(self)
                if self.path == "/v2/":
                    if fake.context is not None and scheme == "http":
                        # What Go's TLS server answers plain http: the client's probe of a
                        # local registry must then go on to TLS.
                        return reply(self, 400, b"Client sent an HTTP request to an HTTPS server.\n")
                    return reply(self, 200, b"{}")
                if fake.auth and self.headers.get("Authorization") != BASIC:
                    return fake.auth(self)
                parts = self.path.split("?")[0].split("/")
                if len(parts) == 5 and parts[3] == "manifests" and parts[4] in fake.manifests:
                    data = fake.manifests[parts[4]]
                    return reply(self, 200, data, {"Content-Type": media_type_of(data),
                                                   "Docker-Content-Digest": sha(data)})
                if len(parts) == 5 and parts[3] == "blobs" and parts[4] in fake.blobs:
                    return reply(self, 200, fake.blobs[parts[4]])
                reply(self, 404, b'{"errors":[{"code":"NOT_FOUND","message":"no"}]}')

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _any

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                if fake.context is not None:
                    sock.settimeout(5)
                    try:
                        first = sock.recv(1, socket.MSG_PEEK)
                        if first == b"\x16":  # a TLS ClientHello
                            sock = fake.context.wrap_socket(sock, server_side=True)
                    except (OSError, ssl.SSLError):
                        pass
                    sock.settimeout(None)
                return sock, addr

        self.context = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*tls)
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add_manifest(self, doc, tag=None):
        data = doc if isinstance(doc, bytes) else canonical(doc)
        self.manifests[sha(data)] = data
        if tag:
            self.manifests[tag] = data
        return sha(data), len(data)

    def add_blob(self, data):
        self.blobs[sha(data)] = data
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(data),
                "size": len(data)}

    def image(self, layer=b"layer bytes", config=None):
        """A small valid image; returns (manifest doc, manifest digest, size)."""
        cfg = self.add_blob(canonical(config or {"os": "linux", "architecture": "amd64"}))
        cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = {"schemaVersion": 2, "mediaType": media_types.OCI_MANIFEST, "config": cfg,
                    "layers": [self.add_blob(layer)]}
        digest, size = self.add_manifest(manifest)
        return manifest, digest, size

    def paths(self):
        return [p for _, _, p, _ in self.requests if p != "/v2/"]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    reg = FakeRegistry()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, its own CA."""
    require_tools("openssl")
    d = str(tmp_path_factory.mktemp("tls"))
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        cwd=d, env=tool_env(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")


def smith_pull(fake, digest, tmp_path, *options):
    """`smith pull` as a user runs it; returns (result, destination)."""
    dest = tmp_path / "pulls" / "out"
    result = run_smith(["pull", "--retries", "0", *options,
                        "%s/app@%s" % (fake.host, digest), str(dest)], str(tmp_path))
    return result, dest


def assert_clean_failure(result, dest, *expected):
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("smith pull: error: "), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert not dest.exists()
    assert not dest.parent.exists() or os.listdir(str(dest.parent)) == []


def client(fake, **transport):
    return RegistryClient(fake.host, Transport(**transport), retries=0)


# ---- digests: a pinned pull never resolves a tag -------------------------------------------

BAD_DIGESTS = ["latest", "sha256:abc", "sha256:" + "A" * 64, "SHA256:" + "a" * 64,
               "md5:" + "a" * 32, "sha256:" + "a" * 63 + "/", "sha256:../../../../etc/passwd",
               "sha256:" + "a" * 64 + "\n", "sha512:" + "a" * 64]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_index_entry_whose_digest_is_a_tag_is_refused_before_any_fetch(fake, tmp_path, bad):
    _, good, size = fake.image()
    fake.manifests["latest"] = fake.manifests[good]  # what the tag would have given
    index = {"schemaVersion": 2, "mediaType": media_types.OCI_INDEX, "manifests": [
        {"mediaType": media_types.OCI_MANIFEST, "digest": bad, "size": size,
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    pinned, _ = fake.add_manifest(index)
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "%s/app@%s" % (fake.host, pinned), "manifests[0]",
                         "not a digest")
    assert fake.paths() == ["/v2/app/manifests/" + pinned]  # nothing but the pinned index


@pytest.mark.parametrize("where", ["config", "layer"])
def test_manifest_blob_digest_that_is_not_a_digest_is_refused(fake, tmp_path, where):
    manifest, _, _ = fake.image()
    target = manifest["config"] if where == "config" else manifest["layers"][0]
    fake.blobs["sha256:abc"] = fake.blobs[target["digest"]]
    target["digest"] = "sha256:abc"
    pinned, _ = fake.add_manifest(manifest)
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "app@" + pinned, "'sha256:abc' is not a digest")
    assert not [p for p in fake.paths() if "/blobs/" in p]


def test_tag_pull_refuses_a_registry_digest_header_that_is_not_a_digest(fake, tmp_path):
    manifest, _, _ = fake.image()
    data = canonical(manifest)
    fake.routes[("GET", "/v2/app/manifests/v1")] = lambda req: reply(
        req, 200, data, {"Content-Type": media_types.OCI_MANIFEST,
                         "Docker-Content-Digest": "sha256:../../escape"})
    with pytest.raises(SmithError, match="Docker-Content-Digest.*not a digest"):
        pull_image(client(fake), parse_reference(fake.host + "/app:v1"), AMD64,
                   str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# ---- sizes: stop at size + 1 ---------------------------------------------------------------

def streaming_blob(fake, total, declare):
    """A blob answer that streams `total` bytes; returns a dict where the bytes the server
    managed to write end up."""
    sent = {"bytes": 0}

    def handler(req):
        req.send_response(200)
        if declare:
            req.send_header("Content-Length", str(total))
        req.send_header("Connection", "close")
        req.end_headers()
        block = b"x" * (64 << 10)
        try:
            while sent["bytes"] < total:
                req.wfile.write(block)
                sent["bytes"] += len(block)
        except OSError:
            pass
        req.close_connection = True
    return sent, handler


@pytest.mark.parametrize("declare", [False, True], ids=["unsized", "content-length"])
def test_blob_longer_than_its_descriptor_is_cut_at_size_plus_one(fake, tmp_path, declare):
    manifest, _, _ = fake.image()
    layer = manifest["layers"][0]
    layer["size"] = 100
    pinned, _ = fake.add_manifest(manifest)
    sent, handler = streaming_blob(fake, 64 << 20, declare)
    fake.routes[("GET", "/v2/app/blobs/" + layer["digest"])] = handler
    started = time.monotonic()
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "/v2/app/blobs/" + layer["digest"],
                         "Content-Length" if declare else "longer than the 100 bytes expected")
    time.sleep(0.2)
    # The kernel's socket buffers hold a few MiB; the old client read all 64 MiB first.
    assert sent["bytes"] < 16 << 20, sent
    assert time.monotonic() - started < 30


def test_manifest_longer_than_the_index_entry_says_is_refused(fake, tmp_path):
    manifest, digest, size = fake.image()
    index = {"schemaVersion": 2, "mediaType": media_types.OCI_INDEX, "manifests": [
        {"mediaType": media_types.OCI_MANIFEST, "digest": digest, "size": size - 10,
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    pinned, _ = fake.add_manifest(index)
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "/v2/app/manifests/" + digest, "%d" % (size - 10))


# ---- time: a deadline per request and a minimum rate ---------------------------------------

def dripping(total, every, stop_after=20.0, in_headers=False):
    """An answer that sends one byte every `every` seconds (for at most `stop_after`)."""
    def handler(req):
        started = time.monotonic()
        try:
            if in_headers:
                head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000
            else:
                req.send_response(200)
                req.send_header("Content-Length", str(total))
                req.end_headers()
                req.wfile.flush()
                head = b"x" * total
            for byte in head:
                if time.monotonic() - started > stop_after:
                    break
                req.wfile.write(bytes([byte]))
                req.wfile.flush()
                time.sleep(every)
        except OSError:
            pass
        req.close_connection = True
    return handler


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_registry_dripping_bytes_is_stopped_by_the_minimum_rate(fake, tmp_path, in_headers):
    manifest, pinned, _ = fake.image(layer=b"y" * 1000)
    layer = manifest["layers"][0]["digest"]
    fake.routes[("GET", "/v2/app/blobs/" + layer)] = dripping(1000, 0.25, in_headers=in_headers)
    started = time.monotonic()
    result, dest = smith_pull(fake, pinned, tmp_path, "--min-rate", "1", "--rate-window", "1.5")
    assert_clean_failure(result, dest, "GET http://%s/v2/app/blobs/%s" % (fake.host, layer),
                         "too slow", "below the minimum of 1 KiB/s")
    assert time.monotonic() - started < 10


def test_a_request_longer_than_its_deadline_is_stopped(fake, tmp_path):
    """Fast enough for the minimum rate, too long in all: 4 KiB every 0.1 s of 4 MiB."""
    manifest, pinned, _ = fake.image(layer=b"z" * (4 << 20))
    layer = manifest["layers"][0]["digest"]

    def handler(req):
        req.send_response(200)
        req.send_header("Content-Length", str(4 << 20))
        req.end_headers()
        try:
            for _ in range(1024):
                req.wfile.write(b"z" * 4096)
                req.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
        req.close_connection = True
    fake.routes[("GET", "/v2/app/blobs/" + layer)] = handler
    started = time.monotonic()
    with pytest.raises(SmithError, match=r"GET http://%s/v2/app/blobs/%s: took longer than 2 s"
                       % (fake.host, layer)):
        pull_image(client(fake, deadline=2, min_rate=1024, rate_window=0.5),
                   parse_reference("%s/app@%s" % (fake.host, pinned)), AMD64,
                   str(tmp_path / "out"))
    assert 1.9 < time.monotonic() - started < 8
    assert not (tmp_path / "out").exists()


def test_a_registry_reading_an_upload_slowly_is_stopped_by_the_minimum_rate(fake, tmp_path):
    """The minimum rate holds while we send too: a registry that reads the body of a PUT one
    byte at a time (once the socket buffers are full) stops the push."""
    b = LayoutBuilder(str(tmp_path / "src"))
    b.name(b.image({"hello": b"slow"}, extra_layers=[layer_tar_gz({"big": os.urandom(12 << 20)})]), "latest")
    b.write()
    fake.routes[("POST", "/v2/app/blobs/uploads/")] = lambda req: reply(
        req, 202, b"", {"Location": "/upload/1"})

    def slow_reader(req):
        if req.body:  # config and small layer: read at once by the fake
            return reply(req, 201, b"")
        try:
            while req.rfile.read(1):
                time.sleep(0.1)
        except OSError:
            pass
        req.close_connection = True
    fake.routes[("PUT", "/upload/1")] = slow_reader
    started = time.monotonic()
    with pytest.raises(SmithError, match=r"PUT http://%s/upload/1\?digest=.*too slow: .* while "
                       "sending the request" % fake.host):
        push_layout(RegistryClient(fake.host, Transport(min_rate=1024, rate_window=1.5),
                                   retries=0), str(tmp_path / "src"), None, "app", [])
    assert time.monotonic() - started < 15


def test_defaults_and_a_fast_registry_still_pull(fake, tmp_path):
    manifest, pinned, _ = fake.image(layer=os.urandom(3 << 20))
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == pinned
    layer = manifest["layers"][0]["digest"]
    with open(str(dest / "blobs" / "sha256" / layer[7:]), "rb") as f:
        assert sha(f.read()) == layer


# ---- credentials: never after a change of scheme or host -----------------------------------

def basic_challenge(req):
    reply(req, 401, b"", {"WWW-Authenticate": 'Basic realm="fake"'})


def test_redirect_from_https_to_http_on_the_same_host_drops_credentials(cert, tmp_path):
    fake = FakeRegistry(tls=cert, auth=basic_challenge)
    try:
        manifest, pinned, _ = fake.image()
        layer = manifest["layers"][0]["digest"]
        data = fake.blobs[layer]
        fake.routes[("GET", "/storage/layer")] = lambda req: reply(req, 200, data)

        def redirect(req):
            if req.headers.get("Authorization") != BASIC:
                return basic_challenge(req)
            reply(req, 307, b"", {"Location": "http://%s/storage/layer" % fake.host})
        fake.routes[("GET", "/v2/app/blobs/" + layer)] = redirect
        reg = RegistryClient(fake.host, Transport(ca_file=cert[0]), CREDS, retries=0)
        pull_image(reg, parse_reference("%s/app@%s" % (fake.host, pinned)), AMD64,
                   str(tmp_path / "out"))
        seen = {(scheme, path): auth for scheme, _, path, auth in fake.requests}
        assert seen[("https", "/v2/app/blobs/" + layer)] == BASIC  # same origin: sent
        assert seen[("http", "/storage/layer")] is None  # https -> http: never
    finally:
        fake.stop()


def test_plain_http_to_a_remote_host_is_refused_also_after_a_redirect():
    with pytest.raises(SmithError, match="refusing plain http to registry.example"):
        Transport().request("GET", "http://registry.example/v2/", {"Authorization": BASIC})


def test_upload_location_on_another_host_gets_no_credentials(fake, tmp_path):
    """A registry may send uploads elsewhere (Location); our credentials stay with it."""
    fake.auth = basic_challenge
    storage = FakeRegistry()
    try:
        def start_upload(req):
            if req.headers.get("Authorization") != BASIC:
                return basic_challenge(req)
            reply(req, 202, b"", {"Location": "http://localhost:%d/upload/1" % storage.port})
        fake.routes[("POST", "/v2/app/blobs/uploads/")] = start_upload
        storage.routes[("PUT", "/upload/1")] = lambda req: reply(req, 201, b"")
        desc = simple_layout(str(tmp_path / "src"), salt="location")
        fake.routes.update({("PUT", "/v2/app/manifests/" + desc["digest"]):
                            lambda req: reply(req, 201, b"")})
        push_layout(RegistryClient(fake.host, credentials=CREDS, retries=0),
                    str(tmp_path / "src"), None, "app", [])
        uploads = [auth for _, method, path, auth in storage.requests if method == "PUT"]
        assert len(uploads) == 2 and uploads == [None, None]
        assert [a for _, m, p, a in fake.requests if m == "POST" and a == BASIC]
    finally:
        storage.stop()


def test_token_realm_must_be_https_for_an_https_registry(cert, tmp_path):
    tokens = FakeRegistry()
    fake = FakeRegistry(tls=cert)
    try:
        fake.auth = lambda req: reply(req, 401, b"", {"WWW-Authenticate": (
            'Bearer realm="http://127.0.0.1:%d/token",service="fake"' % tokens.port)})
        tokens.routes[("GET", "/token")] = lambda req: reply(req, 200, b'{"token":"t"}')
        _, pinned, _ = fake.image()
        reg = RegistryClient(fake.host, Transport(ca_file=cert[0]), CREDS, retries=0)
        with pytest.raises(SmithError, match="token realm http://127.0.0.1:%d/token is not "
                                             "https" % tokens.port):
            pull_image(reg, parse_reference("%s/app@%s" % (fake.host, pinned)), AMD64,
                       str(tmp_path / "out"))
        assert tokens.requests == []  # the credentials never left in clear text
        # --insecure: the user vouches for the network, the realm may be http.
        reg = RegistryClient(fake.host, Transport(insecure=True), CREDS, retries=0)
        with pytest.raises(SmithError):  # the fake refuses the token; what matters is the ask
            pull_image(reg, parse_reference("%s/app@%s" % (fake.host, pinned)), AMD64,
                       str(tmp_path / "out"))
        assert [auth for _, _, _, auth in tokens.requests] == [BASIC]
    finally:
        fake.stop()
        tokens.stop()


# ---- JSON from the registry: bounded, and of the right shape -------------------------------

DEEP = b"[" * 100000 + b"]" * 100000
DEEP_OBJECT = b'{"a":' * 100000 + b"1" + b"}" * 100000


def manifest_with(fake, **changes):
    manifest, _, _ = fake.image()
    manifest.update(changes)
    return manifest


def layer_with(fake, **changes):
    manifest, _, _ = fake.image()
    manifest["layers"][0].update(changes)
    return manifest


def index_of(*entries):
    return {"schemaVersion": 2, "mediaType": media_types.OCI_INDEX, "manifests": list(entries)}


MALFORMED = {
    "deep-manifest": (lambda f: DEEP, "nested too deeply"),
    "deep-object": (lambda f: DEEP_OBJECT, "nested too deeply"),
    "not-json": (lambda f: b"\xff{", "not valid JSON"),
    "top-level-list": (lambda f: b"[]", "expected a JSON object"),
    "manifests-wrong-types": (lambda f: index_of("x", 5), "manifests[0]: expected a JSON object"),
    "manifests-not-a-list": (lambda f: {"mediaType": media_types.OCI_INDEX, "manifests": {}},
                             "'manifests' must be a JSON array"),
    "platform-a-string": (lambda f: index_of({"digest": sha(b"x"), "size": 1,
                                              "platform": "linux"}), "'platform' must be"),
    "deep-in-index": (lambda f: b'{"mediaType":"%s","manifests":' % media_types.OCI_INDEX.encode()
                      + DEEP + b"}", "nested too deeply"),
    "layers-missing": (lambda f: manifest_with(f, layers=None), "'layers' is missing"),
    "layers-a-string": (lambda f: manifest_with(f, layers="x"), "'layers' must be a JSON array"),
    "layer-a-number": (lambda f: manifest_with(f, layers=[5]), "layers[0]: expected a JSON obj"),
    "digest-a-number": (lambda f: layer_with(f, digest=5), "'digest' must be a JSON string"),
    "size-a-string": (lambda f: layer_with(f, size="100"), "'size' must be a JSON integer"),
    "size-negative": (lambda f: layer_with(f, size=-1), "size -1 is out of range"),
    "size-a-boolean": (lambda f: layer_with(f, size=True), "'size' must be a JSON integer"),
    "size-a-float": (lambda f: layer_with(f, size=1e300), "'size' must be a JSON integer"),
    "urls-a-string": (lambda f: layer_with(f, urls="x"), "'urls' must be a JSON array"),
    "config-missing": (lambda f: manifest_with(f, config=None), "'config' is missing"),
    "config-a-list": (lambda f: manifest_with(f, config=[]), "'config' must be a JSON object"),
    "media-type-a-number": (lambda f: manifest_with(f, mediaType=5), "'mediaType' must be"),
    "schema-1": (lambda f: manifest_with(f, schemaVersion=1), "schemaVersion 1"),
    "media-type-unknown": (lambda f: manifest_with(f, mediaType="text/\x1b[31mred"),
                           "media type 'text/\\x1b[31mred'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_or_index_is_a_clear_error(fake, tmp_path, case):
    make, expected = MALFORMED[case]
    doc = make(fake)
    pinned, _ = fake.add_manifest(doc)
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "%s/app@%s: " % (fake.host, pinned), expected)


def test_malformed_config_is_a_clear_error(fake, tmp_path):
    manifest, _, _ = fake.image()
    manifest["config"] = fake.add_blob(DEEP)
    pinned, _ = fake.add_manifest(manifest)
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "image config", "nested too deeply")


TOKEN_ANSWERS = {
    "deep": (DEEP, "nested too deeply"),
    "a-list": (b"[]", "expected a JSON object"),
    "token-a-number": (b'{"token": 5}', "no usable token"),
    "token-splits-headers": (b'{"token": "abc\\r\\nX-Evil: 1"}', "no usable token"),
    "expires-a-string": (b'{"token": "abc", "expires_in": "soon"}', "'expires_in' must be"),
    "expires-nan": (b'{"token": "abc", "expires_in": NaN}', "'expires_in' must be"),
}


@pytest.mark.parametrize("case", sorted(TOKEN_ANSWERS))
def test_malformed_token_answer_is_a_clear_error(fake, tmp_path, case):
    answer, expected = TOKEN_ANSWERS[case]
    fake.auth = lambda req: reply(req, 401, b"", {"WWW-Authenticate": (
        'Bearer realm="http://%s/token",service="fake"' % fake.host)})
    fake.routes[("GET", "/token")] = lambda req: reply(req, 200, answer)
    _, pinned, _ = fake.image()
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "token server http://%s/token" % fake.host, expected)


@pytest.mark.parametrize("body", [DEEP, b'{"errors": 5}', b'{"errors": ["x", 5]}',
                                  b'{"errors": [{"code": {"a": 1}}]}', b"\x1b[2J" * 10],
                         ids=["deep", "errors-a-number", "errors-wrong-types", "code-an-object",
                              "terminal-escapes"])
def test_malformed_error_body_still_gives_the_http_error(fake, tmp_path, body):
    _, pinned, _ = fake.image()
    fake.routes[("GET", "/v2/app/manifests/" + pinned)] = lambda req: reply(req, 404, body)
    result, dest = smith_pull(fake, pinned, tmp_path)
    assert_clean_failure(result, dest, "HTTP 404")
    assert "\x1b" not in result.stderr


# ---- properties ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["sha256:" + "a" * 64, "latest", media_types.OCI_INDEX]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["manifests", "layers", "config", "digest", "size", "mediaType",
                         "platform", "os", "architecture", "urls", "x"]), children, max_size=6),
    max_leaves=30)


@given(json_values)
def test_any_json_is_a_checked_document_or_a_clear_error(value):
    """Whatever the shape: a SmithError, or a document whose every descriptor has a valid
    digest and a non-negative integer size."""
    for check in (check_index, check_manifest):
        try:
            doc = check(value, "doc")
        except SmithError:
            continue
        entries = doc["manifests"] if check is check_index else [doc["config"]] + doc["layers"]
        for d in entries:
            assert is_digest(d["digest"]) and isinstance(d["size"], int) and d["size"] >= 0


# ---- the credentials file: JSON too, read before any request -------------------------------

@pytest.mark.parametrize("content,expected", [
    (DEEP, "nested too deeply"),
    (b'{"auths": {"%s": {"auth": 5}}}', "auth must be a string"),
    (b'{"auths": {"%s": {"username": ["u"], "password": "p"}}}', "must be strings"),
], ids=["deep", "auth-a-number", "username-a-list"])
def test_malformed_credentials_file_is_a_clear_error(fake, tmp_path, content, expected):
    auth = tmp_path / "auth.json"
    auth.write_bytes(content.replace(b"%s", fake.host.encode()) if b"%s" in content else content)
    _, pinned, _ = fake.image()
    result, dest = smith_pull(fake, pinned, tmp_path, "--auth-file", str(auth))
    assert_clean_failure(result, dest, str(auth), expected)
