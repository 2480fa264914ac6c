"""An image built by smith's own `smith layer` / `smith image --attach` (smith.oci) goes to a
real registry with its SBOM and comes back byte-identical."""
import json
import os

import pytest

from smith.testutil.local_registry import LocalRegistry, run_smith, skopeo

pytest.importorskip("smith.oci.image_cli")


@pytest.fixture
def registry(tmp_path):
    reg = LocalRegistry(str(tmp_path / "registry"))
    yield reg
    reg.stop()


def test_smith_built_image_with_sbom_roundtrips(registry, tmp_path):
    home = str(tmp_path)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "hello").write_bytes(b"not really a program")
    (tmp_path / "config.json").write_text(json.dumps({"entrypoint": ["/hello"]}))
    (tmp_path / "sbom.json").write_text(json.dumps({"spdxVersion": "SPDX-2.3"}))
    steps = [["layer", "--output", str(tmp_path / "layer"), "--dir", "/=%s" % (tmp_path / "root")],
             ["image", "--output", str(tmp_path / "img"), "--tag", "latest", "--config",
              str(tmp_path / "config.json"), "--layer", str(tmp_path / "layer"),
              "--attach", "application/spdx+json=%s" % (tmp_path / "sbom.json")]]
    for step in steps:
        built = run_smith(step, home)
        assert built.returncode == 0, built.stderr
    image_digest = built.stdout.strip()

    pushed = run_smith(["push", str(tmp_path / "img"), registry.host + "/built/hello:1.0"], home)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == image_digest
    referrers = skopeo("inspect", "--tls-verify=false", "--raw", "docker://%s/built/hello:%s"
                       % (registry.host, image_digest.replace(":", "-")))
    assert referrers.returncode == 0, referrers.stderr
    assert [m["artifactType"] for m in json.loads(referrers.stdout)["manifests"]] == [
        "application/spdx+json"]

    pulled = run_smith(["pull", "%s/built/hello@%s" % (registry.host, image_digest),
                        str(tmp_path / "back")], home)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == image_digest
    back_blobs = os.listdir(str(tmp_path / "back" / "blobs" / "sha256"))
    assert len(back_blobs) >= 3  # manifest, config, layer(s)
    for name in back_blobs:
        assert (tmp_path / "back" / "blobs" / "sha256" / name).read_bytes() == \
            (tmp_path / "img" / "blobs" / "sha256" / name).read_bytes()
    # smith's own safe unpacker accepts what we pulled, and the file is there.
    unpacked = run_smith(["unpack", "--output", str(tmp_path / "tree"),
                          "%s:latest" % (tmp_path / "back")], home)
    assert unpacked.returncode == 0, unpacked.stderr
    assert (tmp_path / "tree" / "hello").read_bytes() == b"not really a program"
