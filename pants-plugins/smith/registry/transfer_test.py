"""Registry transfers against a real distribution registry seen through a recording proxy: blobs
the registry has are skipped after HEAD, blobs it has in another repository are mounted (no upload
PUT reaches it), a declined mount falls back to an upload, connections are kept alive, and a
parallel pull writes the same bytes as a serial one."""
import http.client
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smith.errors import SmithError
from smith.registry.blob_locations import BlobLocations
from smith.registry.client import RegistryClient
from smith.registry.layout import select_image
from smith.testutil.local_registry import LocalRegistry, run_smith
from smith.registry.platforms import parse_platform
from smith.registry.pull import pull_image
from smith.registry.push import Pusher, push_layout
from smith.registry.reference import parse_reference
from smith.testutil.sample_images import LayoutBuilder, layer_tar_gz
from smith.registry.transport import Transport

AMD64 = parse_platform("linux/amd64")


class RecordingProxy:
    """Forwards every request to the registry and records (method, path, status); counts the
    TCP connections clients open to it."""

    def __init__(self, upstream: str):
        self.requests = []
        self.connections = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                proxy.connections += 1
                super().setup()

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "transfer-encoding")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                proxy.requests.append((self.command, self.path, resp.status))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "transfer-encoding", "content-length",
                                     "date", "server"):
                        continue
                    if k.lower() == "location":
                        v = v.replace(upstream, proxy.host)
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def uploads(self, repo):
        """Upload-finishing PUTs and PATCHes into `repo`."""
        prefix = "/v2/%s/blobs/uploads/" % repo
        return [r for r in self.requests if r[0] in ("PUT", "PATCH") and r[1].startswith(prefix)]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = LocalRegistry(str(tmp_path_factory.mktemp("registry")))
    yield reg
    reg.stop()


@pytest.fixture
def proxy(registry):
    p = RecordingProxy(registry.host)
    yield p
    p.stop()


def three_layer_layout(path, salt):
    b = LayoutBuilder(path)
    extra = [layer_tar_gz({"lib/%s-%d" % (salt, i): os.urandom(300 << 10)}) for i in range(2)]
    desc = b.image({"hello": salt.encode()}, extra_layers=extra)
    b.name(desc, "latest")
    b.write()
    return desc


def linked(registry, repo, digest):
    """The registry's own record that `repo` holds the blob (its layer link file)."""
    return os.path.exists(os.path.join(registry.root, "docker", "registry", "v2", "repositories",
                                       repo, "_layers", "sha256", digest.split(":")[1], "link"))


def test_head_skip_then_mount_from_a_repository_pushed_to(registry, proxy, tmp_path):
    src = str(tmp_path / "src")
    desc = three_layer_layout(src, "mount")
    client = RegistryClient(proxy.host)
    stats = {}
    assert push_layout(client, src, None, "team/first", ["v1"], stats=stats) == desc["digest"]
    assert stats == {"exists": 0, "mounted": 0, "uploaded": 4}  # config + 3 layers
    assert len(proxy.uploads("team/first")) == 4
    # The registry's scheme is probed once, not by each of the workers that start together.
    assert [r for r in proxy.requests if r[1] == "/v2/"] == [("GET", "/v2/", 200)]

    del proxy.requests[:]
    push_layout(client, src, None, "team/first", ["v2"], stats=stats)
    assert stats == {"exists": 4, "mounted": 0, "uploaded": 0}
    assert [r for r in proxy.requests if r[0] in ("POST", "PATCH")] == []
    assert proxy.uploads("team/first") == []

    del proxy.requests[:]
    push_layout(client, src, None, "team/second", ["v1"], stats=stats)
    assert stats == {"exists": 0, "mounted": 4, "uploaded": 0}
    assert proxy.uploads("team/second") == []  # nothing uploaded: the registry mounted them
    mounts = [r for r in proxy.requests if r[0] == "POST"]
    assert len(mounts) == 4 and all("from=team%2Ffirst" in p and s == 201 for _, p, s in mounts)
    # A known place to mount from: the mount goes first, no HEAD round trip per blob.
    assert [p for m, p, _ in proxy.requests if m == "HEAD" and "/blobs/" in p] == []
    manifest = json.loads(open(os.path.join(src, "blobs", "sha256",
                                            desc["digest"].split(":")[1])).read())
    for layer in manifest["layers"]:
        assert linked(registry, "team/second", layer["digest"])
    # Kept-alive connections: about one per worker (4) for the ~35 requests of the three pushes
    # (the plain-http probe's connection is one of them), not one per request.
    assert proxy.connections <= 8, proxy.connections


def test_a_blob_pulled_from_one_repository_is_mounted_into_another(registry, tmp_path):
    src = str(tmp_path / "src")
    desc = three_layer_layout(src, "pulled")
    push_layout(RegistryClient(registry.host), src, None, "pulled/origin", [])
    client = RegistryClient(registry.host)
    pull_image(client, parse_reference("%s/pulled/origin@%s" % (registry.host, desc["digest"])),
               AMD64, str(tmp_path / "out"))
    stats = {}
    push_layout(client, str(tmp_path / "out"), None, "pulled/copy", [], stats=stats)
    assert stats == {"exists": 0, "mounted": 4, "uploaded": 0}


def test_a_declined_mount_uploads_in_the_session_the_registry_opened(registry, proxy, tmp_path):
    src = str(tmp_path / "src")
    desc = three_layer_layout(src, "declined")
    locations = BlobLocations()
    manifest = json.loads(open(os.path.join(src, "blobs", "sha256",
                                            desc["digest"].split(":")[1])).read())
    for d in [manifest["config"]] + manifest["layers"]:  # a stale hint: "ghost" never had them
        locations.seen(proxy.host, "ghost/repo", d["digest"])
    stats = {}
    push_layout(RegistryClient(proxy.host, locations=locations), src, None, "declined/x", [],
                stats=stats)
    assert stats == {"exists": 0, "mounted": 0, "uploaded": 4}
    posts = [r for r in proxy.requests if r[0] == "POST"]
    assert len(posts) == 4 and all("mount=" in p and s == 202 for _, p, s in posts)
    assert len(proxy.uploads("declined/x")) == 4


def test_cli_remembers_where_blobs_were_across_runs(registry, tmp_path):
    src = str(tmp_path / "src")
    three_layer_layout(src, "cli-cache")
    home = str(tmp_path / "home")
    os.makedirs(home)
    first = run_smith(["push", src, registry.host + "/cache/one:v1"], home)
    assert first.returncode == 0, first.stderr
    assert "4 blobs uploaded, 0 already there, 0 mounted" in first.stderr
    assert os.path.exists(os.path.join(home, ".cache", "smith", "blob-locations.json"))
    second = run_smith(["push", src, registry.host + "/cache/two:v1"], home)
    assert second.returncode == 0, second.stderr
    assert "0 blobs uploaded, 0 already there, 4 mounted" in second.stderr
    off = run_smith(["push", src, registry.host + "/cache/three:v1"], home,
                    SMITH_BLOB_CACHE="off")
    assert "4 blobs uploaded" in off.stderr


def test_parallel_pull_writes_the_same_bytes_as_a_serial_pull(registry, tmp_path):
    src = str(tmp_path / "src")
    desc = three_layer_layout(src, "parallel")
    push_layout(RegistryClient(registry.host), src, None, "par/img", [])
    ref = parse_reference("%s/par/img@%s" % (registry.host, desc["digest"]))
    trees = []
    for jobs in (1, 4):
        out = str(tmp_path / ("out%d" % jobs))
        pull_image(RegistryClient(registry.host), ref, AMD64, out, jobs=jobs)
        files = {}
        for root, _dirs, names in os.walk(out):
            for name in names:
                with open(os.path.join(root, name), "rb") as f:
                    files[os.path.relpath(os.path.join(root, name), out)] = f.read()
        trees.append(files)
    assert trees[0] == trees[1] and len(trees[0]) == 2 + 5  # index, oci-layout, 5 blobs


def test_a_layout_blob_changed_on_disk_is_refused_while_it_uploads(registry, tmp_path):
    src = str(tmp_path / "src")
    desc = three_layer_layout(src, "corrupt")
    manifest = json.loads(open(os.path.join(src, "blobs", "sha256",
                                            desc["digest"].split(":")[1])).read())
    victim = os.path.join(src, "blobs", "sha256", manifest["layers"][1]["digest"].split(":")[1])
    with open(victim, "r+b") as f:  # same size, other bytes
        f.seek(100)
        f.write(b"\0" * 16)
    pusher = Pusher(RegistryClient(registry.host, retries=0), src, "corrupt/x")
    with pytest.raises(SmithError, match="the file has digest sha256:.*layout is corrupt"):
        pusher.push_tree(select_image(src, None))


class ClosingServer:
    """Answers every request, then closes the connection without saying so (no Connection:
    close), as a server whose idle timeout fired would: the client's next request on it fails."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.host = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.served = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.served += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")


def test_a_kept_alive_connection_the_server_closed_is_replaced():
    server = ClosingServer()
    transport = Transport()
    url = "http://%s/v2/" % server.host
    for _ in range(3):
        assert transport.request("GET", url).status == 200
        assert transport.request("PUT", url, {"Content-Length": "5"}, b"hello").status == 200
    assert server.served == 6
    transport.close()
    server.sock.close()


def test_a_declined_mount_of_a_blob_already_there_uploads_nothing(registry, proxy, tmp_path):
    """Mount first skips the HEAD; when the mount is declined (a stale hint) the blob may still
    be there (someone else pushed it): asked then, not uploaded again."""
    src = str(tmp_path / "src")
    desc = three_layer_layout(src, "there")
    push_layout(RegistryClient(registry.host, locations=BlobLocations()), src, None, "there/x", [])
    locations = BlobLocations()
    manifest = json.loads(open(os.path.join(src, "blobs", "sha256",
                                            desc["digest"].split(":")[1])).read())
    for d in [manifest["config"]] + manifest["layers"]:
        locations.seen(proxy.host, "ghost/repo", d["digest"])
    del proxy.requests[:]
    stats = {}
    push_layout(RegistryClient(proxy.host, locations=locations), src, None, "there/x", [],
                stats=stats)
    assert stats == {"exists": 4, "mounted": 0, "uploaded": 0}
    assert proxy.uploads("there/x") == []
