import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from elftools.elf.elffile import ELFFile

import smith
from smith import cli as smith_cli
from smith.errors import SmithError
from smith.oci import image, image_cli, layer_cli
from smith.testutil import hostile_json
from smith.testutil.debian import require_tools, tool_env

SCRIPT = ("echo hello from $(id -u):$(id -g); touch /x 2>/dev/null || echo root-is-read-only; "
          "echo tmp-ok > /tmp/t && cat /run/t; echo ENV=$GREETING")


def run(*cmd, **kw):
    return subprocess.run(list(cmd), env=kw.pop("env", tool_env()), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def smith_image(tmp, name, cfg, *args):
    (tmp / (name + ".json")).write_text(json.dumps(cfg))
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    proc = run(sys.executable, "-m", "smith", "image", "--output", name, "--tag", "latest",
               "--config", name + ".json", *args, cwd=str(tmp), env=env)
    assert proc.returncode == 0, proc.stderr
    return tmp / name, proc.stdout.strip()


@pytest.fixture
def busybox_layer(tmp_path):
    require_tools("busybox")
    root = tmp_path / "bbroot"
    (root / "bin").mkdir(parents=True)
    busybox = shutil.which("busybox", path=tool_env()["PATH"])
    with open(busybox, "rb") as f:
        segments = ELFFile(f).iter_segments()
        assert not any(s["p_type"] == "PT_INTERP" for s in segments), \
            "%s is dynamically linked; install busybox-static" % busybox
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("base motd\n")
    assert layer_cli.main(["--output", str(tmp_path / "bb"), "--dir", "/=%s" % root]) == 0
    return "bb"


def test_image_is_accepted_by_skopeo_and_umoci_and_runs_under_runc(tmp_path, busybox_layer):
    require_tools("skopeo", "umoci", "runc")
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text('{"spdxVersion":"SPDX-2.3"}')
    cfg = {"entrypoint": ["/bin/busybox"], "cmd": ["sh", "-c", SCRIPT],
           "env": {"GREETING": "hi"}, "labels": {"org.example": "x"},
           "annotations": {"org.opencontainers.image.source": "test"},
           "exposed_ports": ["8080", "53/udp"]}
    layout, digest = smith_image(tmp_path, "img", cfg, "--layer", busybox_layer,
                                 "--attach", "application/spdx+json=sbom.spdx.json")
    index = json.loads((layout / "index.json").read_text())
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    image_entry, artifact_entry = index["manifests"]
    assert image_entry["digest"] == digest
    assert image_entry["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    artifact = json.loads((layout / "blobs" / "sha256" / artifact_entry["digest"][7:]).read_text())
    assert artifact["subject"]["digest"] == digest
    assert artifact["artifactType"] == artifact_entry["artifactType"] == "application/spdx+json"
    blob = layout / "blobs" / "sha256" / artifact["layers"][0]["digest"][7:]
    assert blob.read_bytes() == sbom.read_bytes()

    inspect = run("skopeo", "inspect", "oci:%s:latest" % layout)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == digest
    conf = json.loads(run("skopeo", "inspect", "--config", "oci:%s:latest" % layout).stdout)
    assert conf["config"]["User"] == "10:10"
    assert sorted(conf["config"]["Volumes"]) == ["/read", "/run", "/write"]
    assert sorted(conf["config"]["ExposedPorts"]) == ["53/udp", "8080/tcp"]
    assert "created" not in conf and len(conf["history"]) == 2

    bundle = tmp_path / "bundle"
    unpacked = run("umoci", "unpack", "--image", "%s:latest" % layout, str(bundle))
    assert unpacked.returncode == 0, unpacked.stderr
    rootfs = bundle / "rootfs"
    for d in ("read", "write", "run", "proc", "sys", "dev"):
        st = os.lstat(rootfs / d)
        assert os.path.isdir(rootfs / d) and (st.st_uid, st.st_gid) == (10, 10), d
    assert os.readlink(rootfs / "tmp") == "run"
    spec_path = bundle / "config.json"
    spec = json.loads(spec_path.read_text())
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = True
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/run"] + [
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=755", "uid=10", "gid=10"]}]
    spec_path.write_text(json.dumps(spec))
    state = tmp_path / "runc-state"
    cid = "smith-oci-test-" + uuid.uuid4().hex[:8]
    try:
        proc = run("runc", "--root", str(state), "run", cid, cwd=str(bundle), timeout=60)
    finally:
        run("runc", "--root", str(state), "delete", "--force", cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["hello from 10:10", "root-is-read-only", "tmp-ok",
                                        "ENV=hi"]


def test_image_digest_is_reproducible(tmp_path, busybox_layer):
    cfg = {"entrypoint": ["/bin/busybox"], "env": {"B": "2", "A": "1"}}
    _, d1 = smith_image(tmp_path, "one", cfg, "--layer", busybox_layer)
    _, d2 = smith_image(tmp_path, "two", cfg, "--layer", busybox_layer)
    assert d1 == d2
    assert (tmp_path / "one" / "index.json").read_bytes() == \
        (tmp_path / "two" / "index.json").read_bytes()
    _, d3 = smith_image(tmp_path, "three", dict(cfg, created="2024-01-01T00:00:00Z"),
                        "--layer", busybox_layer)
    assert d3 != d1


def test_base_image_layers_come_first_and_config_is_inherited(tmp_path, busybox_layer):
    require_tools("umoci", "skopeo")
    base, _ = smith_image(tmp_path, "base", {"entrypoint": ["/bin/busybox"], "cmd": ["true"],
                                             "env": {"A": "1", "B": "2"},
                                             "labels": {"base": "yes"}},
                          "--layer", busybox_layer)
    extra = tmp_path / "extra"
    (extra / "opt").mkdir(parents=True)
    (extra / "opt" / "new").write_text("new\n")
    assert layer_cli.main(["--output", str(tmp_path / "top"), "--dir", "/=%s" % extra,
                           "--delete", "/etc/motd"]) == 0
    child, _ = smith_image(tmp_path, "child", {"env": {"B": "3", "C": "4"},
                                               "labels": {"child": "yes"}},
                           "--base", "base:latest", "--layer", "top")
    conf = json.loads(run("skopeo", "inspect", "--config", "oci:%s:latest" % child).stdout)
    base_conf = json.loads(run("skopeo", "inspect", "--config", "oci:%s:latest" % base).stdout)
    # base: skeleton + busybox; child: the same two (skeleton not repeated) + top.
    assert conf["rootfs"]["diff_ids"][:2] == base_conf["rootfs"]["diff_ids"]
    assert len(conf["rootfs"]["diff_ids"]) == 3
    c = conf["config"]
    assert c["Env"][1:] == ["A=1", "B=3", "C=4"] and c["Env"][0].startswith("PATH=")
    assert c["Entrypoint"] == ["/bin/busybox"] and c["Cmd"] == ["true"]
    assert c["Labels"] == {"base": "yes", "child": "yes"}
    bundle = tmp_path / "bundle"
    assert run("umoci", "unpack", "--image", "%s:latest" % child, str(bundle)).returncode == 0
    assert (bundle / "rootfs" / "opt" / "new").read_text() == "new\n"
    assert (bundle / "rootfs" / "bin" / "busybox").exists()
    assert not (bundle / "rootfs" / "etc" / "motd").exists()


def test_config_and_layer_errors_are_user_errors(tmp_path, busybox_layer):
    (tmp_path / "bad.json").write_text('{"entrypoint": "/bin/sh", "bogus": 1}')
    with pytest.raises(SmithError, match=r"unknown keys \['bogus'\]"):
        image_cli.main(["--output", str(tmp_path / "o"), "--tag", "t",
                        "--config", str(tmp_path / "bad.json")])
    (tmp_path / "bad.json").write_text('{"entrypoint": "/bin/sh"}')
    with pytest.raises(SmithError, match=r"'entrypoint' must be a JSON list"):
        image_cli.main(["--output", str(tmp_path / "o"), "--tag", "t",
                        "--config", str(tmp_path / "bad.json")])
    (tmp_path / "ok.json").write_text("{}")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "data").write_text("keep me")
    with pytest.raises(SmithError, match=r"exists and is not an OCI layout"):
        image_cli.main(["--output", str(tmp_path / "precious"), "--tag", "t",
                        "--config", str(tmp_path / "ok.json")])
    assert (tmp_path / "precious" / "data").read_text() == "keep me"
    blob = tmp_path / busybox_layer / "layer.tar.gz"
    blob.write_bytes(blob.read_bytes() + b"tampered")
    with pytest.raises(SmithError, match=r"--layer .*bb: content is sha256:"):
        image_cli.main(["--output", str(tmp_path / "o"), "--tag", "t",
                        "--config", str(tmp_path / "ok.json"),
                        "--layer", str(tmp_path / busybox_layer)])
    assert not (tmp_path / "o").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".o.")]


@pytest.fixture
def tiny_layer(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "hello").write_text("hello\n")
    assert layer_cli.main(["--output", str(tmp_path / "tiny"), "--dir", "/=%s" % (tmp_path / "root")]) == 0
    return tmp_path / "tiny"


def _smith_image(capsys, tmp_path, config, *args):
    """`smith image` as users run it: exit status, stderr; and what it left beside its output."""
    (tmp_path / "cfg.json").write_bytes(config)
    before = set(os.listdir(str(tmp_path)))
    status = smith_cli.main(["image", "--output", str(tmp_path / "o"), "--tag", "t",
                             "--config", str(tmp_path / "cfg.json"), *args])
    return status, capsys.readouterr().err, set(os.listdir(str(tmp_path))) - before


@pytest.mark.parametrize("content, message", [
    (b'["/bin/sh"]', "must be a JSON object"),
    (b'{"created": 5}', "'created' must be a JSON str"),
    (hostile_json.deeply_nested(), hostile_json.DEEP_MESSAGE),
    (hostile_json.padded({}, image.MAX_CONFIG_BYTES), hostile_json.oversized_message(image.MAX_CONFIG_BYTES)),
    (hostile_json.NOT_JSON, hostile_json.NOT_JSON_MESSAGE),
], ids=["top-level-array", "created-a-number", "deep", "oversized", "not-json"])
def test_a_hostile_config_file_is_a_clear_error(tmp_path, capsys, content, message):
    status, err, left = _smith_image(capsys, tmp_path, content)
    assert status == 1 and err.startswith("smith image: error: --config %s: " % (tmp_path / "cfg.json")), err
    assert message in err, err
    assert left == set()


@pytest.mark.parametrize("change, message", [
    (lambda d: [d], "layer.json: expected a JSON object, found array"),
    (lambda d: dict(d, digest=5), "layer.json: the field 'digest' must be a JSON string, not integer"),
    (lambda d: dict(d, size="12"), "layer.json: the field 'size' must be a JSON integer, not string"),
    (lambda d: dict(d, diff_id="sha256:abc"), "layer.json diff_id: malformed digest 'sha256:abc'"),
    # a digest names the blob's file: one climbing out of the output must not write (or clobber) there
    (lambda d: dict(d, digest="sha256:../../../victim"), "layer.json digest: malformed digest"),
    (lambda d: hostile_json.deeply_nested(), hostile_json.DEEP_MESSAGE),
    (lambda d: hostile_json.padded(d, image.MAX_LAYER_JSON_BYTES),
     hostile_json.oversized_message(image.MAX_LAYER_JSON_BYTES)),
    (lambda d: hostile_json.NOT_JSON, hostile_json.NOT_JSON_MESSAGE),
], ids=["top-level-array", "digest-a-number", "size-a-string", "diff-id-malformed", "digest-a-path", "deep",
        "oversized", "not-json"])
def test_a_hostile_layer_json_is_a_clear_error_and_writes_nothing(tmp_path, capsys, tiny_layer, change, message):
    meta = tiny_layer / "layer.json"
    hostile = change(json.loads(meta.read_text()))
    meta.write_bytes(hostile if isinstance(hostile, bytes) else json.dumps(hostile).encode())
    (tmp_path / "victim.part").write_text("keep me")
    status, err, left = _smith_image(capsys, tmp_path, b"{}", "--layer", str(tiny_layer))
    assert status == 1 and err.startswith("smith image: error: --layer %s: layer.json" % tiny_layer), err
    assert message in err and err.rstrip().endswith("rebuild it with `smith layer`"), err
    assert left == set() and (tmp_path / "victim.part").read_text() == "keep me"
