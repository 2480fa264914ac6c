"""The registry client under trouble: corrupt storage, a registry killed mid-push, and many
pushes at once — all against a real docker-registry on 127.0.0.1."""
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smith.errors import SmithError
from smith.registry.client import RegistryClient
from smith.testutil.local_registry import LocalRegistry, run_smith, skopeo
from smith.registry.platforms import parse_platform
from smith.registry.pull import pull_image
from smith.registry.push import push_layout
from smith.registry.reference import parse_reference
from smith.testutil.sample_images import LayoutBuilder, layer_tar_gz, simple_layout
from smith.registry.transport import Transport

AMD64 = parse_platform("linux/amd64")


@pytest.fixture
def registry(tmp_path):
    reg = LocalRegistry(str(tmp_path / "registry"))
    yield reg
    reg.stop()


def flip_middle_byte(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def leftovers(parent):
    return sorted(n for n in os.listdir(parent) if n.startswith("."))


def test_corrupt_blob_in_registry_storage_is_rejected_and_nothing_written(registry, tmp_path):
    desc = simple_layout(str(tmp_path / "src"), salt="corrupt-me")
    client = RegistryClient(registry.host)
    push_layout(client, str(tmp_path / "src"), None, "victim", [])
    with open(os.path.join(str(tmp_path / "src"), "blobs", "sha256", desc["digest"][7:])) as f:
        layer = json.load(f)["layers"][0]["digest"]
    flip_middle_byte(registry.blob_data_path(layer))

    out = tmp_path / "pulls" / "out"
    pulled = run_smith(["pull", "%s/victim@%s" % (registry.host, desc["digest"]), str(out)],
                       str(tmp_path))
    assert pulled.returncode == 1
    assert "blob %s" % layer in pulled.stderr and "corrupt" in pulled.stderr
    assert not out.exists() and leftovers(str(tmp_path / "pulls")) == []

    # A manifest corrupted in storage is caught by its digest too.
    flip_middle_byte(registry.blob_data_path(desc["digest"]))
    with pytest.raises(SmithError, match="content has digest sha256:.* but %s" % desc["digest"]):
        pull_image(client, parse_reference("%s/victim@%s" % (registry.host, desc["digest"])),
                   AMD64, str(out))
    assert not out.exists() and leftovers(str(tmp_path / "pulls")) == []


def test_push_repairs_a_blob_link_left_empty_by_a_registry_crash(registry, tmp_path):
    """distribution writes link files in place; killed at the wrong moment it leaves an empty
    one and answers 500 to every HEAD of that blob. A push must upload it again, not give up."""
    desc = simple_layout(str(tmp_path / "src"), salt="crashed-link")
    client = RegistryClient(registry.host, backoff=0.01)
    push_layout(client, str(tmp_path / "src"), None, "crashed", [])
    with open(os.path.join(str(tmp_path / "src"), "blobs", "sha256", desc["digest"][7:])) as f:
        layer = json.load(f)["layers"][0]["digest"]
    link = os.path.join(registry.root, "docker", "registry", "v2", "repositories", "crashed",
                        "_layers", "sha256", layer[7:], "link")
    open(link, "w").close()
    stats = {}
    assert push_layout(client, str(tmp_path / "src"), None, "crashed", ["v1"], stats=stats) == \
        desc["digest"]
    assert stats == {"exists": 1, "mounted": 0, "uploaded": 1}
    with open(link) as f:
        assert f.read() == layer
    pull_image(client, parse_reference("%s/crashed@%s" % (registry.host, desc["digest"])),
               AMD64, str(tmp_path / "out"))


class KillingTransport(Transport):
    """Kills the registry (SIGKILL) just before the n-th PATCH of a chunked upload."""

    def __init__(self, registry, kill_at, restart_after=None):
        super().__init__()
        self.registry, self.kill_at, self.restart_after = registry, kill_at, restart_after
        self.patches = 0
        self.answered = []  # (method, status, url) of the requests the registry answered

    def request(self, method, url, *args, **kwargs):
        if method == "PATCH":
            self.patches += 1
            if self.patches == self.kill_at:
                self.registry.kill()
                if self.restart_after is not None:
                    threading.Timer(self.restart_after, self.registry.start).start()
        resp = super().request(method, url, *args, **kwargs)
        self.answered.append((method, resp.status, url))
        return resp


def big_layout(path, salt):
    b = LayoutBuilder(path)
    desc = b.image({"hello": salt.encode()},
                   extra_layers=[layer_tar_gz({"big": os.urandom(2 << 20)})])
    b.name(desc, "latest")
    b.write()
    return desc


def test_push_fails_when_registry_dies_then_a_second_push_completes(registry, tmp_path):
    desc = big_layout(str(tmp_path / "src"), "killed")
    dying = RegistryClient(registry.host, KillingTransport(registry, kill_at=3), retries=2,
                           backoff=0.05, chunk_threshold=256 << 10, chunk_size=256 << 10)
    with pytest.raises(SmithError, match="failed after 3 attempts.*check that the registry is up"):
        push_layout(dying, str(tmp_path / "src"), None, "phoenix", ["v1"])
    registry.start()
    client = RegistryClient(registry.host)
    assert client.get_manifest("phoenix", "v1", missing_ok=True) is None  # no half image tagged
    assert push_layout(client, str(tmp_path / "src"), None, "phoenix", ["v1"]) == desc["digest"]
    raw = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                 "docker://%s/phoenix:v1" % registry.host)
    assert raw.stdout.strip() == desc["digest"], raw.stderr
    got = pull_image(client, parse_reference("%s/phoenix@%s" % (registry.host, desc["digest"])),
                     AMD64, str(tmp_path / "out"))
    assert got == desc["digest"]


@pytest.mark.parametrize("fixed_secret", [True, False], ids=["upload-resumed",
                                                             "upload-restarted"])
def test_push_survives_a_registry_restart_within_its_retries(tmp_path, fixed_secret):
    registry = LocalRegistry(str(tmp_path / "registry"), fixed_secret=fixed_secret)
    try:
        desc = big_layout(str(tmp_path / "src"), "restarted")
        transport = KillingTransport(registry, kill_at=4, restart_after=0.3)
        client = RegistryClient(registry.host, transport, retries=6, backoff=0.1,
                                chunk_threshold=256 << 10, chunk_size=256 << 10)
        assert push_layout(client, str(tmp_path / "src"), None, "lazarus", []) == desc["digest"]
        # Upload sessions of the big (chunked) layer: with a fixed secret its upload URL stays
        # valid and resumes in the same session; with a new secret it starts over in a second.
        sessions = {url.split("?")[0] for method, status, url in transport.answered
                    if method == "PATCH" and status == 202}
        assert len(sessions) == (1 if fixed_secret else 2), transport.answered
        pull_image(RegistryClient(registry.host),
                   parse_reference("%s/lazarus@%s" % (registry.host, desc["digest"])), AMD64,
                   str(tmp_path / "out"))
    finally:
        registry.stop()


def test_twenty_concurrent_pushes_all_land(registry, tmp_path):
    shared = layer_tar_gz({"lib/libshared.so": os.urandom(64 << 10)})  # uploaded by many at once
    layouts = []
    for i in range(20):
        b = LayoutBuilder(str(tmp_path / ("src%d" % i)))
        desc = b.image({"hello": b"image %d" % i}, extra_layers=[shared])
        b.name(desc, "latest")
        b.write()
        layouts.append((b.path, desc["digest"]))
    shared_client = RegistryClient(registry.host)

    def push(i):
        # Even pushes share one client (threads); odd ones have their own, like separate
        # `smith push` processes, and race each other on the shared layer inside the registry.
        client = shared_client if i % 2 == 0 else RegistryClient(registry.host)
        path, _ = layouts[i]
        return push_layout(client, path, None, "fleet/app%d" % (i % 4), ["t%d" % i])
    with ThreadPoolExecutor(20) as pool:
        digests = list(pool.map(push, range(20)))
    assert digests == [d for _, d in layouts]
    for i, (_, digest) in enumerate(layouts):
        _, _, got = shared_client.get_manifest("fleet/app%d" % (i % 4), "t%d" % i)
        assert got == digest
    tags = json.loads(skopeo("list-tags", "--tls-verify=false",
                             "docker://%s/fleet/app0" % registry.host).stdout)["Tags"]
    assert sorted(tags) == sorted("t%d" % i for i in range(0, 20, 4))


class FlakyRegistry:
    """A fake registry that answers 503 or cuts a body short `failures` times, then serves."""

    def __init__(self, failures, mode):
        self.failures, self.mode, self.calls = failures, mode, 0
        self.manifest = json.dumps({"schemaVersion": 2, "mediaType":
                                    "application/vnd.oci.image.manifest.v1+json",
                                    "config": {}, "layers": []}).encode()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/v2/":
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                fake.calls += 1
                failing = fake.calls <= fake.failures
                if failing and fake.mode == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", str(len(fake.manifest)))
                self.end_headers()
                self.wfile.write(fake.manifest[:10] if failing else fake.manifest)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.mark.parametrize("mode", ["503", "cut-short"])
def test_bounded_retries_with_backoff(mode):
    fake = FlakyRegistry(failures=2, mode=mode)
    try:
        digest = "sha256:" + hashlib.sha256(fake.manifest).hexdigest()
        data, _, got = RegistryClient(fake.host, retries=2, backoff=0.01).get_manifest("r", digest)
        assert (data, got, fake.calls) == (fake.manifest, digest, 3)
        fake.calls, fake.failures = 0, 100
        started = time.time()
        with pytest.raises(SmithError, match="failed after 4 attempts"):
            RegistryClient(fake.host, retries=3, backoff=0.2).get_manifest("r", digest)
        # Backoff doubles: 0.2 + 0.4 + 0.8 s of waiting between the 4 attempts.
        assert fake.calls == 4 and 1.4 <= time.time() - started < 5
    finally:
        fake.httpd.shutdown()
