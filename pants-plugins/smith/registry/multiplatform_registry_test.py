"""A multi-platform image as smith builds it (smith image --platform + smith image-index of
Debian's busybox-static for amd64 and arm64) pushed whole to a real distribution registry:
skopeo sees the very index, `skopeo copy --all` brings every platform back byte for byte, and
smith pull picks each platform."""
import json
import os

import pytest

from smith.oci.image_source import image_platforms, open_image
from smith.registry import media_types
from smith.registry.client import RegistryClient
from smith.registry.layout import read_json_blob, select_image
from smith.registry.platforms import parse_platform
from smith.registry.pull import pull_image
from smith.registry.push import push_layout
from smith.registry.reference import parse_reference
from smith.testutil.debian import require_tools
from smith.testutil.local_registry import LocalRegistry, run_smith, skopeo
from smith.testutil.qemu import busybox_index

pytestmark = pytest.mark.debian_mirror


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_tools("skopeo", "docker-registry")
    reg = LocalRegistry(str(tmp_path_factory.mktemp("registry")))
    yield reg
    reg.stop()


def test_the_whole_index_is_pushed_and_copied_back(registry, tmp_path):
    layout = busybox_index()
    entry = select_image(layout, None)
    assert entry["mediaType"] == media_types.OCI_INDEX
    _, index = read_json_blob(layout, entry["digest"])
    pushed = run_smith(["push", "--insecure", layout, "%s/bb:v1" % registry.host], str(tmp_path))
    assert pushed.returncode == 0, pushed.stderr

    raw = skopeo("inspect", "--tls-verify=false", "--raw", "docker://%s/bb:v1" % registry.host).stdout
    remote = json.loads(raw)
    assert remote == index and remote["mediaType"] == media_types.OCI_INDEX
    assert [m["platform"] for m in remote["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"}]

    copy = tmp_path / "copy"
    skopeo("copy", "--all", "--src-tls-verify=false", "docker://%s/bb:v1" % registry.host,
           "oci:%s:v1" % copy)
    assert json.loads(skopeo("inspect", "--raw", "oci:%s:v1" % copy).stdout) == index
    for platform in ("linux/amd64", "linux/arm64"):  # every platform's blobs came back intact
        a = open_image(layout, platform=parse_platform(platform))
        b = open_image(str(copy) + ":v1", platform=parse_platform(platform))
        assert (a.manifest, a.config) == (b.manifest, b.config)
        for layer in b.layers:
            assert os.path.getsize(os.path.join(str(copy), layer.name)) == layer.size
    assert [str(p) for p in image_platforms(str(copy), "v1")] == ["linux/amd64", "linux/arm64/v8"]

    client = RegistryClient(registry.host)
    ref = parse_reference("%s/bb@%s" % (registry.host, entry["digest"]))
    for n, m in enumerate(index["manifests"]):
        platform = "%s/%s" % (m["platform"]["os"], m["platform"]["architecture"])
        assert pull_image(client, ref, parse_platform(platform), str(tmp_path / str(n))) == m["digest"]


def test_pull_all_keeps_the_whole_index(registry, tmp_path):
    layout = busybox_index()
    entry = select_image(layout, None)
    pushed = run_smith(["push", "--insecure", layout, "%s/bball:v1" % registry.host], str(tmp_path))
    assert pushed.returncode == 0, pushed.stderr
    ref = "%s/bball@%s" % (registry.host, entry["digest"])
    pulled = run_smith(["pull", "--insecure", "--platform", "all", ref, str(tmp_path / "all")], str(tmp_path))
    assert (pulled.returncode, pulled.stdout) == (0, entry["digest"] + "\n"), pulled.stderr
    for name in ("index.json", "oci-layout"):
        assert (tmp_path / "all" / name).read_bytes() == open(os.path.join(layout, name), "rb").read()
    assert sorted(os.listdir(str(tmp_path / "all/blobs/sha256"))) == sorted(
        os.listdir(os.path.join(layout, "blobs/sha256")))
    assert [str(p) for p in image_platforms(str(tmp_path / "all"))] == ["linux/amd64", "linux/arm64/v8"]
