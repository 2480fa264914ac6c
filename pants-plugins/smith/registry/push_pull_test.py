"""Push to and pull from a real distribution registry (Debian docker-registry) on 127.0.0.1,
checked against skopeo and umoci."""
import hashlib
import importlib.util
import json
import os
import subprocess

import pytest

from smith.errors import SmithError
from smith.registry import media_types
from smith.registry.client import RegistryClient
from smith.testutil.local_registry import LocalRegistry, run_smith, skopeo
from smith.registry.platforms import parse_platform
from smith.registry.pull import pull_image
from smith.registry.layout import select_image
from smith.registry.push import Pusher, push_layout
from smith.registry.reference import parse_reference
from smith.registry.transport import Transport
from smith.testutil.sample_images import LayoutBuilder, layer_tar_gz, simple_layout
from smith.testutil.debian import require_tools, tool_env


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = LocalRegistry(str(tmp_path_factory.mktemp("registry")))
    yield reg
    reg.stop()


def index_of(layout):
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)


def blob_bytes(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
        return f.read()


def test_cli_push_then_pull_by_digest_gives_identical_image(registry, tmp_path):
    desc = simple_layout(str(tmp_path / "src"), salt="cli")
    pushed = run_smith(["push", "--tag", "v1", "--digest-file", str(tmp_path / "d.txt"),
                        str(tmp_path / "src"), registry.host + "/team/app:latest"], str(tmp_path))
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == desc["digest"]
    assert (tmp_path / "d.txt").read_text().strip() == desc["digest"]
    assert "2 blobs uploaded, 0 already there" in pushed.stderr
    again = run_smith(["push", str(tmp_path / "src"), registry.host + "/team/app"], str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "0 blobs uploaded, 2 already there" in again.stderr
    for tag in ("latest", "v1"):  # skopeo sees both tags on the same manifest
        raw = skopeo("inspect", "--tls-verify=false", "--raw",
                     "docker://%s/team/app:%s" % (registry.host, tag))
        assert raw.returncode == 0, raw.stderr
        assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == desc["digest"]

    out = tmp_path / "pulled"
    pulled = run_smith(["pull", "%s/team/app@%s" % (registry.host, desc["digest"]), str(out)],
                       str(tmp_path))
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == desc["digest"]
    entry, = index_of(str(out))["manifests"]
    assert entry["digest"] == desc["digest"]
    assert entry["annotations"][media_types.REF_NAME] == "latest"
    manifest = json.loads(blob_bytes(str(out), desc["digest"]))
    for d in [manifest["config"]] + manifest["layers"]:
        assert blob_bytes(str(out), d["digest"]) == blob_bytes(str(tmp_path / "src"), d["digest"])
    # umoci accepts the pulled layout as a valid image and unpacks our file.
    require_tools("umoci")
    unpack = subprocess.run(["umoci", "unpack", "--rootless", "--image", "%s:latest" % out,
                             str(tmp_path / "bundle")], env=tool_env(), capture_output=True,
                            text=True)
    assert unpack.returncode == 0, unpack.stderr
    assert (tmp_path / "bundle" / "rootfs" / "hello").read_bytes() == b"#!hello cli"


def test_pull_refuses_a_tag_unless_allowed(registry, tmp_path):
    simple_layout(str(tmp_path / "src"), salt="tagged")
    assert run_smith(["push", str(tmp_path / "src"), registry.host + "/tagged:v2"],
                     str(tmp_path)).returncode == 0
    refused = run_smith(["pull", registry.host + "/tagged:v2", str(tmp_path / "a")], str(tmp_path))
    assert refused.returncode == 1
    assert "not pinned" in refused.stderr and "@sha256" in refused.stderr
    assert not (tmp_path / "a").exists()
    allowed = run_smith(["pull", "--allow-tag", registry.host + "/tagged:v2",
                         str(tmp_path / "b")], str(tmp_path))
    assert allowed.returncode == 0, allowed.stderr
    assert index_of(str(tmp_path / "b"))["manifests"][0]["digest"] == allowed.stdout.strip()
    unknown = run_smith(["push", "--no-such-option", str(tmp_path / "src"), registry.host + "/x"],
                        str(tmp_path))
    assert unknown.returncode == 1 and "--no-such-option" in unknown.stderr


def test_skopeo_pulls_what_we_pushed(registry, tmp_path):
    desc = simple_layout(str(tmp_path / "src"), salt="for-skopeo")
    client = RegistryClient(registry.host)
    digest = push_layout(client, str(tmp_path / "src"), None, "ours", ["v1"])
    copied = skopeo("copy", "--src-tls-verify=false", "--preserve-digests",
                    "docker://%s/ours@%s" % (registry.host, digest),
                    "oci:%s:got" % (tmp_path / "s"))
    assert copied.returncode == 0, copied.stderr
    assert index_of(str(tmp_path / "s"))["manifests"][0]["digest"] == desc["digest"]


def test_we_pull_what_skopeo_pushed_as_docker_v2(registry, tmp_path):
    simple_layout(str(tmp_path / "src"), salt="from-skopeo")
    copied = skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2",
                    "oci:%s:latest" % (tmp_path / "src"),
                    "docker://%s/theirs:v2s2" % registry.host)
    assert copied.returncode == 0, copied.stderr
    raw = skopeo("inspect", "--tls-verify=false", "--raw",
                 "docker://%s/theirs:v2s2" % registry.host).stdout.encode()
    assert json.loads(raw)["mediaType"] == media_types.DOCKER_MANIFEST
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    ref = parse_reference("%s/theirs@%s" % (registry.host, digest))
    got = pull_image(RegistryClient(registry.host), ref, parse_platform("linux/amd64"),
                     str(tmp_path / "out"))
    assert got == digest
    entry, = index_of(str(tmp_path / "out"))["manifests"]
    assert entry["mediaType"] == media_types.DOCKER_MANIFEST
    assert blob_bytes(str(tmp_path / "out"), digest) == raw
    # The layout keeps Docker media types (converting would change the digest); smith's own
    # unpacker, where present, reads it.
    if importlib.util.find_spec("smith.oci.unpack_cli"):
        unpacked = run_smith(["unpack", "--output", str(tmp_path / "tree"),
                              "%s:latest" % (tmp_path / "out")], str(tmp_path))
        assert unpacked.returncode == 0, unpacked.stderr
        assert (tmp_path / "tree" / "hello").read_bytes() == b"#!hello from-skopeo"


def test_index_push_and_platform_selection(registry, tmp_path):
    b = LayoutBuilder(str(tmp_path / "src"))
    amd64 = b.image({"hello": b"amd64"}, arch="amd64")
    arm64 = b.image({"hello": b"arm64"}, arch="arm64", variant="v8")
    armv7 = b.image({"hello": b"armv7"}, arch="arm", variant="v7")
    index = b.index([amd64, arm64, armv7])
    b.name(index, "latest")
    b.write()
    client = RegistryClient(registry.host)
    assert push_layout(client, str(tmp_path / "src"), None, "multi", ["v1"]) == index["digest"]
    raw = skopeo("inspect", "--tls-verify=false", "--raw",
                 "docker://%s/multi:v1" % registry.host).stdout.encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == index["digest"]

    ref = parse_reference("%s/multi@%s" % (registry.host, index["digest"]))
    for platform, want in (("linux/amd64", amd64), ("linux/arm64", arm64),
                           ("linux/arm/v7", armv7)):
        out = str(tmp_path / platform.replace("/", "-"))
        assert pull_image(client, ref, parse_platform(platform), out) == want["digest"]
        entry, = index_of(out)["manifests"]
        assert entry["platform"]["architecture"] == want["platform"]["architecture"]
    with pytest.raises(SmithError, match="no image for linux/s390x.*linux/amd64"):
        pull_image(client, ref, parse_platform("linux/s390x"), str(tmp_path / "none"))
    assert not (tmp_path / "none").exists()
    # A digest naming one image (not the index) must still match the platform asked for.
    single = parse_reference("%s/multi@%s" % (registry.host, arm64["digest"]))
    with pytest.raises(SmithError, match="is an image for linux/arm64, not linux/amd64"):
        pull_image(client, single, parse_platform("linux/amd64"), str(tmp_path / "none"))
    assert not (tmp_path / "none").exists()


def test_sbom_artifact_is_pushed_and_listed_in_referrers_tag(registry, tmp_path):
    b = LayoutBuilder(str(tmp_path / "src"))
    image = b.image({"hello": b"with sbom"})
    b.name(image, "latest")
    sbom = b.artifact(image, b'{"spdxVersion":"SPDX-2.3"}', "application/spdx+json")
    b.name(sbom, None)
    b.write()
    client = RegistryClient(registry.host)
    for _ in range(2):  # a second push must not list the SBOM twice
        assert push_layout(client, str(tmp_path / "src"), None, "withsbom", []) == image["digest"]
    data, media_type, _ = client.get_manifest("withsbom", sbom["digest"])
    assert json.loads(data)["subject"]["digest"] == image["digest"]
    # The referrers tag schema of the OCI 1.1 distribution spec, read back with skopeo.
    raw = skopeo("inspect", "--tls-verify=false", "--raw", "docker://%s/withsbom:sha256-%s"
                 % (registry.host, image["digest"][7:]))
    assert raw.returncode == 0, raw.stderr
    listed = json.loads(raw.stdout)["manifests"]
    assert [(m["digest"], m["artifactType"]) for m in listed] == [
        (sbom["digest"], "application/spdx+json")]


def test_chunked_upload_and_cross_repository_mount(registry, tmp_path):
    # Random bytes do not compress: the layer stays ~700 KiB and goes up in several PATCHes.
    big = layer_tar_gz({"big": os.urandom(700 * 1024)})
    b = LayoutBuilder(str(tmp_path / "src"))
    desc = b.image({"hello": b"chunky"}, extra_layers=[big])
    b.name(desc, "latest")
    b.write()
    methods = []

    class CountingTransport(Transport):
        def request(self, method, url, *args, **kwargs):
            methods.append(method)
            return super().request(method, url, *args, **kwargs)

    chunked = RegistryClient(registry.host, CountingTransport(), chunk_threshold=100 * 1024,
                             chunk_size=128 * 1024)
    push_layout(chunked, str(tmp_path / "src"), None, "chunked/a", ["v1"])
    assert methods.count("PATCH") == -(-len(big) // (128 * 1024)) > 1
    out = str(tmp_path / "out")
    pull_image(chunked, parse_reference("%s/chunked/a@%s" % (registry.host, desc["digest"])),
               parse_platform("linux/amd64"), out)
    manifest = json.loads(blob_bytes(out, desc["digest"]))
    assert blob_bytes(out, manifest["layers"][1]["digest"]) == big

    pusher = Pusher(RegistryClient(registry.host), str(tmp_path / "src"), "chunked/b",
                    mount_from="chunked/a")
    assert pusher.push_tree(select_image(str(tmp_path / "src"), None)) == desc["digest"]
    assert pusher.stats == {"exists": 0, "mounted": 3, "uploaded": 0}
