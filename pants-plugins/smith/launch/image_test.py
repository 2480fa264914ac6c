import json
import os
import shutil

import pytest

from smith.errors import SmithError
from smith.launch.image import open_image, split_layout_ref
from smith.launch.testing import busybox_image


def _copy(tmp_path) -> str:
    dst = str(tmp_path / "layout")
    shutil.copytree(busybox_image(), dst)
    return dst


def test_reads_config_and_layers_bottom_first(tmp_path):
    layout = _copy(tmp_path)
    image = open_image(layout, "latest")
    assert image.config["Entrypoint"] == ["/bin/busybox"]
    assert image.config["User"] == "10:10"
    with open(os.path.join(layout, "index.json")) as f:
        manifest_digest = json.load(f)["manifests"][0]["digest"]
    with open(os.path.join(layout, "blobs", "sha256", manifest_digest.split(":")[1])) as f:
        manifest = json.load(f)
    assert [l.digest for l in image.layers] == [d["digest"] for d in manifest["layers"]]
    assert all(os.path.isfile(l.blob) and l.diff_id.startswith("sha256:") for l in image.layers)
    assert open_image(layout) == image  # the only image needs no tag


def test_unknown_tag_names_the_tags_there(tmp_path):
    with pytest.raises(SmithError, match=r"no image tagged 'v2'.*tags: latest"):
        open_image(_copy(tmp_path), "v2")


def test_tampered_config_is_refused(tmp_path):
    layout = _copy(tmp_path)
    image = open_image(layout)
    blobs = os.path.join(layout, "blobs", "sha256")
    # Find the config blob (the JSON with "rootfs") and change one byte of it.
    for name in os.listdir(blobs):
        path = os.path.join(blobs, name)
        data = open(path, "rb").read()
        if b'"rootfs"' in data:
            os.chmod(path, 0o644)
            open(path, "wb").write(data.replace(b"busybox", b"busyb0x", 1))
    with pytest.raises(SmithError, match="config blob .* does not match its digest"):
        open_image(layout)
    assert image.layers  # the untampered read worked


def test_not_a_layout(tmp_path):
    with pytest.raises(SmithError, match="not an OCI image layout"):
        open_image(str(tmp_path))


def test_split_layout_ref(tmp_path):
    assert split_layout_ref("out/img:v1") == ("out/img", "v1")
    assert split_layout_ref("out/img") == ("out/img", None)
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert split_layout_ref(str(odd)) == (str(odd), None)
