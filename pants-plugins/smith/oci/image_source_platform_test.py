"""Multi-platform layouts: open_image picks the platform asked for (the host's by default), and
hostile indexes (a platform listed twice, a config that contradicts its index entry, nesting, an
index that lists itself) are clear errors."""
import hashlib
import json
import os

import pytest

from smith.errors import SmithError
from smith.oci.image_source import image_platforms, open_image
from smith.registry import media_types
from smith.registry.platforms import Platform, host_platform, parse_platform
from smith.testutil.sample_images import LayoutBuilder, _json

ARM64 = parse_platform("linux/arm64")


def two_platforms(path: str) -> LayoutBuilder:
    b = LayoutBuilder(path)
    amd64 = b.image({"hello": b"amd64"})
    arm64 = b.image({"hello": b"arm64"}, arch="arm64", variant="v8")
    b.name(b.index([amd64, arm64]), "latest")
    b.write()
    return b


def _hello(img) -> bytes:
    import gzip
    import io
    import tarfile
    with img.store.open(img.layers[0].name) as f:
        tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(f.read())))
        return tar.extractfile("hello").read()


def test_index_gives_the_platform_asked_for_and_the_host_by_default(tmp_path):
    layout = two_platforms(str(tmp_path / "l")).path
    assert host_platform() == Platform("linux", "amd64", None)  # these machines are x86_64
    default = open_image(layout)
    assert (_hello(default), str(default.platform)) == (b"amd64", "linux/amd64")
    arm = open_image(layout, platform=ARM64)
    assert (_hello(arm), str(arm.platform)) == (b"arm64", "linux/arm64/v8")
    assert arm.config["architecture"] == "arm64"
    assert [str(p) for p in image_platforms(layout)] == ["linux/amd64", "linux/arm64/v8"]
    with pytest.raises(SmithError, match=r"no linux/s390x image in the index; it offers "
                                         r"linux/amd64, linux/arm64/v8"):
        open_image(layout, platform=parse_platform("linux/s390x"))


def test_a_single_foreign_image_is_opened_as_it_is(tmp_path):
    b = LayoutBuilder(str(tmp_path / "l"))
    b.name(b.image({"hello": b"arm64"}, arch="arm64"), "latest")
    b.write()
    assert str(open_image(b.path).platform) == "linux/arm64"
    assert image_platforms(b.path) == [Platform("linux", "arm64", None)]
    with pytest.raises(SmithError, match="no linux/amd64 image"):
        open_image(b.path, platform=parse_platform("linux/amd64"))


def test_a_platform_listed_twice_is_refused(tmp_path):
    b = LayoutBuilder(str(tmp_path / "l"))
    one = b.image({"hello": b"one"}, arch="arm64")
    two = b.image({"hello": b"two"}, arch="arm64", variant="v8")  # v8 is arm64's default
    b.name(b.index([one, two]), "latest")
    b.write()
    for call in (lambda: open_image(b.path, platform=ARM64), lambda: image_platforms(b.path)):
        with pytest.raises(SmithError, match=r"lists linux/arm64/v8 twice \(sha256:.* and sha256:"):
            call()


def test_a_config_that_contradicts_its_index_entry_is_refused(tmp_path):
    b = LayoutBuilder(str(tmp_path / "l"))
    amd64 = b.image({"hello": b"really amd64"})
    lying = dict(amd64, platform={"os": "linux", "architecture": "arm64"})
    b.name(b.index([b.image({"hello": b"amd64"}), lying]), "latest")
    b.write()
    with pytest.raises(SmithError, match="manifest sha256:.* is listed for linux/arm64 but its "
                                         "config says linux/amd64; the index is wrong"):
        open_image(b.path, platform=ARM64)
    with pytest.raises(SmithError, match="is listed for linux/arm64 but its config says"):
        image_platforms(b.path)


def test_indexes_nested_too_deep_are_refused(tmp_path):
    b = LayoutBuilder(str(tmp_path / "l"))
    desc = b.image({"hello": b"deep"})
    for _ in range(6):
        desc = b.index([desc])
    b.name(desc, "latest")
    b.write()
    with pytest.raises(SmithError, match="indexes nested more than 4 deep"):
        open_image(b.path)


def test_an_index_that_lists_itself_is_refused(tmp_path):
    """Content addressing makes a true self-reference impossible; a blob that claims to be the
    index it lists is caught by its digest, an index.json that lists the same index twice
    on one path is caught as a cycle."""
    b = LayoutBuilder(str(tmp_path / "l"))
    fake = "sha256:" + hashlib.sha256(b"x").hexdigest()
    body = _json({"schemaVersion": 2, "mediaType": media_types.OCI_INDEX, "manifests": [
        {"mediaType": media_types.OCI_INDEX, "digest": fake, "size": 200}]})
    with open(os.path.join(b.path, "blobs", "sha256", fake[7:]), "wb") as f:
        f.write(body)
    b.entries.append({"mediaType": media_types.OCI_INDEX, "digest": fake, "size": len(body)})
    b.write()
    with pytest.raises(SmithError, match="does not match its name|lists itself"):
        open_image(b.path)


def test_a_sparse_index_reads_only_the_platform_asked_for(tmp_path):
    """A layout may hold one platform's blobs under the full index (as `skopeo copy` without
    --all leaves it): the other platforms' manifests are never read."""
    b = two_platforms(str(tmp_path / "l"))
    index = json.load(open(os.path.join(b.path, "index.json")))
    top = json.load(open(os.path.join(b.path, "blobs", "sha256", index["manifests"][0]["digest"][7:])))
    arm = [m for m in top["manifests"] if m["platform"]["architecture"] == "arm64"][0]
    os.remove(os.path.join(b.path, "blobs", "sha256", arm["digest"][7:]))
    assert _hello(open_image(b.path)) == b"amd64"
    with pytest.raises(SmithError, match="is missing|cannot read"):
        open_image(b.path, platform=ARM64)
