"""`smith image --platform` + `smith image-index`: one layout holding an OCI image index whose
platform manifests are byte-identical to the one-platform builds, checked with real skopeo."""
import json
import os
import subprocess

import pytest

from smith.errors import SmithError
from smith.oci import image_cli, image_index, layer_cli
from smith.testutil.debian import require_tools, tool_env


def blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("index")
    (tmp / "root" / "etc").mkdir(parents=True)
    (tmp / "root" / "etc" / "motd").write_text("hi\n")
    (tmp / "cfg.json").write_text(json.dumps({"entrypoint": ["/bin/x"]}))
    assert layer_cli.main(["--output", str(tmp / "l"), "--dir", "/=%s" % (tmp / "root")]) == 0
    one = {}
    for platform in ("linux/amd64", "linux/arm64"):
        out = tmp / platform.replace("/", "-")
        assert image_cli.main(["--output", str(out), "--tag", "latest", "--config", str(tmp / "cfg.json"),
                               "--layer", str(tmp / "l"), "--platform", platform]) == 0
        one[platform] = str(out)
    out = tmp / "multi"
    assert image_index.main(["--output", str(out), "--tag", "latest",
                             "--platform-layout", "linux/amd64=" + one["linux/amd64"],
                             "--platform-layout", "linux/arm64=" + one["linux/arm64"]]) == 0
    return tmp, one, str(out)


def test_index_lists_each_platform_in_order_with_the_one_platform_manifests(built):
    tmp, one, multi = built
    top = json.loads(open(os.path.join(multi, "index.json")).read())
    entry = top["manifests"][0]
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    index = json.loads(blob(multi, entry["digest"]))
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"}]
    for m, platform in zip(index["manifests"], ("linux/amd64", "linux/arm64")):
        single = json.loads(open(os.path.join(one[platform], "index.json")).read())["manifests"][0]
        assert m["digest"] == single["digest"]
        config = json.loads(blob(multi, json.loads(blob(multi, m["digest"]))["config"]["digest"]))
        assert {k: config.get(k) for k in ("architecture", "os", "variant")} == dict(
            {"variant": None}, **m["platform"])


def test_skopeo_reads_the_index_and_each_platform(built):
    require_tools("skopeo")
    tmp, one, multi = built
    raw = subprocess.run(["skopeo", "inspect", "--raw", "oci:%s:latest" % multi], env=tool_env(),
                         check=True, stdout=subprocess.PIPE).stdout
    assert json.loads(raw)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        args = ["--override-arch", arch] + (["--override-variant", variant] if variant else [])
        cfg = subprocess.run(["skopeo", *args, "inspect", "--config", "oci:%s:latest" % multi],
                             env=tool_env(), check=True, stdout=subprocess.PIPE).stdout
        assert json.loads(cfg)["architecture"] == arch


def test_amd64_manifest_is_unchanged_by_the_platform_option(built, tmp_path):
    tmp, one, _ = built
    out = tmp_path / "default"
    assert image_cli.main(["--output", str(out), "--tag", "latest", "--config", str(tmp / "cfg.json"),
                           "--layer", str(tmp / "l")]) == 0
    assert open(out / "index.json", "rb").read() == open(os.path.join(one["linux/amd64"], "index.json"), "rb").read()


def test_wrong_platform_and_bad_blobs_are_refused(built, tmp_path):
    tmp, one, _ = built
    with pytest.raises(SmithError, match="is for .*arm64.*not .*amd64"):
        image_index.main(["--output", str(tmp_path / "a"), "--tag", "t",
                          "--platform-layout", "linux/amd64=" + one["linux/arm64"],
                          "--platform-layout", "linux/arm64=" + one["linux/arm64"]])
    with pytest.raises(SmithError, match="not supported"):
        image_index.main(["--output", str(tmp_path / "b"), "--tag", "t",
                          "--platform-layout", "linux/mips=" + one["linux/arm64"],
                          "--platform-layout", "linux/arm64=" + one["linux/arm64"]])
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-a", one["linux/arm64"], str(bad)], check=True)
    name = sorted(os.listdir(bad / "blobs" / "sha256"))[0]
    (bad / "blobs" / "sha256" / name).write_bytes(b"tampered")
    with pytest.raises(SmithError, match="content is sha256:"):
        image_index.main(["--output", str(tmp_path / "c"), "--tag", "t",
                          "--platform-layout", "linux/amd64=" + one["linux/amd64"],
                          "--platform-layout", "linux/arm64=" + str(bad)])
    assert not (tmp_path / "c").exists()


def test_a_multi_platform_base_gives_each_platform_its_own_image(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps({"entrypoint": ["/bin/x"]}))
    layers = {}
    for arch in ("amd64", "arm64"):
        (tmp_path / arch / "etc").mkdir(parents=True)
        (tmp_path / arch / "etc" / "arch").write_text(arch + "\n")
        assert layer_cli.main(["--output", str(tmp_path / ("l-" + arch)), "--dir", "/=%s" % (tmp_path / arch)]) == 0
        layers[arch] = json.loads((tmp_path / ("l-" + arch) / "layer.json").read_text())["diff_id"]
    for arch in ("amd64", "arm64"):
        assert image_cli.main(["--output", str(tmp_path / ("base-" + arch)), "--tag", "latest", "--config",
                               str(tmp_path / "cfg.json"), "--layer", str(tmp_path / ("l-" + arch)),
                               "--platform", "linux/" + arch]) == 0
    assert image_index.main(["--output", str(tmp_path / "base"), "--tag", "latest",
                             "--platform-layout", "linux/amd64=%s" % (tmp_path / "base-amd64"),
                             "--platform-layout", "linux/arm64=%s" % (tmp_path / "base-arm64")]) == 0
    assert image_cli.main(["--output", str(tmp_path / "top"), "--tag", "latest", "--config", str(tmp_path / "cfg.json"),
                           "--base", str(tmp_path / "base") + ":latest", "--platform", "linux/arm64"]) == 0
    top = str(tmp_path / "top")
    entry = json.loads(open(os.path.join(top, "index.json")).read())["manifests"][0]
    config = json.loads(blob(top, json.loads(blob(top, entry["digest"]))["config"]["digest"]))
    assert layers["arm64"] in config["rootfs"]["diff_ids"] and layers["amd64"] not in config["rootfs"]["diff_ids"]
    # A one-platform base of another platform is refused.
    with pytest.raises(SmithError, match="amd64"):
        image_cli.main(["--output", str(tmp_path / "bad"), "--tag", "latest", "--config", str(tmp_path / "cfg.json"),
                        "--base", str(tmp_path / "base-amd64") + ":latest", "--platform", "linux/arm64"])
    assert not (tmp_path / "bad").exists()
