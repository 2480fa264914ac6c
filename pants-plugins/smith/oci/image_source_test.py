"""Hostile OCI metadata (index.json, manifests, configs, a docker archive's manifest.json): a
SmithError naming the input and what is wrong, or a valid image; never another exception."""
import copy
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

import smith
from smith.errors import SmithError
from smith.oci.image_source import open_image

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("hello")
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"hi\n"))
    return buf.getvalue()


def _docs():
    """The documents of a valid one-layer image: (index, manifest, config, layer blob)."""
    plain = _layer_tar()
    blob = gzip.compress(plain, mtime=0)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/hello"], "Labels": {"a": "b"}},
              "rootfs": {"type": "layers", "diff_ids": [_sha(plain)]}, "history": [{"created_by": "x"}]}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": None, "size": None},
                "layers": [{"mediaType": LAYER_GZ, "digest": _sha(blob), "size": len(blob)}]}
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": None, "size": None,
         "platform": {"architecture": "amd64", "os": "linux"},
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    return index, manifest, config, blob


def _raw(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def write_layout(root, index, manifest, config, blob, fix_digests=True) -> str:
    """A layout of these documents (bytes are written as they are); the descriptors of the config
    and the manifest are filled in, so each document is reached with a matching digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (blobs / _sha(blob)[7:]).write_bytes(blob)
    config_raw = _raw(config)
    (blobs / _sha(config_raw)[7:]).write_bytes(config_raw)
    if fix_digests and isinstance(manifest, dict) and isinstance(manifest.get("config"), dict):
        manifest["config"].update(digest=_sha(config_raw), size=len(config_raw))
    manifest_raw = _raw(manifest)
    (blobs / _sha(manifest_raw)[7:]).write_bytes(manifest_raw)
    if fix_digests and isinstance(index, dict) and isinstance(index.get("manifests"), list) and \
            index["manifests"] and isinstance(index["manifests"][0], dict):
        index["manifests"][0].update(digest=_sha(manifest_raw), size=len(manifest_raw))
    (root / "index.json").write_bytes(_raw(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return str(root)


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _case(name):
    """(index, manifest, config, blob) for one hostile case."""
    index, manifest, config, blob = _docs()
    m0 = index["manifests"][0]
    if name == "index_deep":
        index = b'{"manifests": ' + _deep(100000) + b"}"
    elif name == "manifest_deep":
        manifest = b'{"schemaVersion": 2, "config": ' + _deep(100000) + b"}"
    elif name == "config_deep":
        config = b'{"rootfs": ' + _deep(100000) + b"}"
    elif name == "config_deep_below_parser_limit":
        config["config"]["Labels"] = {"x": "y"}
        config["extra"] = json.loads(_deep(500))
    elif name == "manifests_not_objects":
        index["manifests"] = ["x", 5]
    elif name == "manifests_not_a_list":
        index["manifests"] = {"a": 1}
    elif name == "index_not_an_object":
        index = [1, 2]
    elif name == "index_not_json":
        index = b"\xff{"
    elif name == "digest_not_a_string":
        m0["digest"] = 5
        return index, manifest, config, blob, False
    elif name == "digest_a_tag":
        m0["digest"] = "latest"
        return index, manifest, config, blob, False
    elif name == "digest_uppercase":
        m0["digest"] = "sha256:" + "A" * 64
        return index, manifest, config, blob, False
    elif name == "digest_sha512":
        m0["digest"], m0["size"] = "sha512:" + "a" * 128, 10
        return index, manifest, config, blob, False
    elif name == "size_negative":
        manifest["layers"][0]["size"] = -1
    elif name == "size_a_string":
        manifest["layers"][0]["size"] = "12"
    elif name == "size_a_bool":
        manifest["layers"][0]["size"] = True
    elif name == "size_a_float":
        manifest["layers"][0]["size"] = 12.5
    elif name == "size_missing":
        del manifest["layers"][0]["size"]
    elif name == "annotations_not_an_object":
        m0["annotations"] = ["latest"]
    elif name == "annotation_not_a_string":
        m0["annotations"] = {"org.opencontainers.image.ref.name": 5}
    elif name == "platform_not_an_object":
        m0["platform"] = "linux/amd64"
    elif name == "layers_not_a_list":
        manifest["layers"] = {"0": manifest["layers"][0]}
    elif name == "layer_not_an_object":
        manifest["layers"] = [7]
    elif name == "layer_digest_not_a_string":
        manifest["layers"][0]["digest"] = ["sha256:x"]
    elif name == "config_descriptor_not_an_object":
        manifest["config"] = "sha256:" + "0" * 64
    elif name == "media_type_not_a_string":
        manifest["mediaType"] = {"x": 1}
        m0.pop("mediaType")
    elif name == "config_not_an_object":
        config = [1]
    elif name == "env_not_a_list":
        config["config"]["Env"] = "PATH=/bin"
    elif name == "entrypoint_not_strings":
        config["config"]["Entrypoint"] = ["/hello", 5]
    elif name == "labels_not_strings":
        config["config"]["Labels"] = {"a": {"b": "c"}}
    elif name == "rootfs_not_an_object":
        config["rootfs"] = ["sha256:x"]
    elif name == "diff_ids_not_a_list":
        config["rootfs"]["diff_ids"] = "sha256:" + "0" * 64
    elif name == "diff_id_not_a_digest":
        config["rootfs"]["diff_ids"] = ["../../etc/passwd"]
    elif name == "user_not_a_string":
        config["config"]["User"] = 0
    else:
        raise AssertionError(name)
    return index, manifest, config, blob, True


CASES = {  # case -> what the error says (after "<layout>: ")
    "index_deep": "index.json: JSON nested too deeply",
    "manifest_deep": "JSON nested too deeply",
    "config_deep": "JSON nested too deeply",
    "config_deep_below_parser_limit": "JSON nested more than 64 levels deep",
    "manifests_not_objects": "index.json manifests[0]: a descriptor must be a JSON object, not string",
    "manifests_not_a_list": "index.json: the field 'manifests' must be a JSON array, not object",
    "index_not_an_object": "index.json must be a JSON object, not array",
    "index_not_json": "index.json: not valid JSON",
    "digest_not_a_string": "index.json manifests[0]: the field 'digest' must be a JSON string, not integer",
    "digest_a_tag": "index.json manifests[0]: malformed digest 'latest'",
    "digest_uppercase": "index.json manifests[0]: malformed digest 'sha256:AAAA",
    "digest_sha512": "only sha256 blobs are supported",
    "size_negative": "layers[0]: the size -1 is negative",
    "size_a_string": "layers[0]: the field 'size' must be a JSON integer, not string",
    "size_a_bool": "layers[0]: the field 'size' must be a JSON integer, not boolean",
    "size_a_float": "layers[0]: the field 'size' must be a JSON integer, not number",
    "size_missing": "layers[0]: the field 'size' is missing",
    "annotations_not_an_object": "the field 'annotations' must be a JSON object, not array",
    "annotation_not_a_string": "'annotations' must hold only strings, not integer",
    "platform_not_an_object": "the field 'platform' must be a JSON object, not string",
    "layers_not_a_list": "the field 'layers' must be a JSON array, not object",
    "layer_not_an_object": "layers[0]: a descriptor must be a JSON object, not integer",
    "layer_digest_not_a_string": "layers[0]: the field 'digest' must be a JSON string, not array",
    "config_descriptor_not_an_object": "the field 'config' must be a JSON object, not string",
    "media_type_not_a_string": "the field 'mediaType' must be a JSON string, not object",
    "config_not_an_object": "the image config must be a JSON object, not array",
    "env_not_a_list": "config: the field 'Env' must be a JSON array, not string",
    "entrypoint_not_strings": "config: 'Entrypoint' must hold only strings, not integer",
    "labels_not_strings": "config: 'Labels' must hold only strings, not object",
    "rootfs_not_an_object": "the field 'rootfs' must be a JSON object, not array",
    "diff_ids_not_a_list": "the field 'diff_ids' must be a JSON array, not string",
    "diff_id_not_a_digest": "diff_id: malformed digest '../../etc/passwd'",
    "user_not_a_string": "config: the field 'User' must be a JSON string, not integer",
}


def _smith(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    return subprocess.run([sys.executable, "-m", "smith", *args], cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)


def test_a_valid_layout_opens(tmp_path):
    img = open_image(write_layout(tmp_path / "ok", *_docs()))
    try:
        assert len(img.layers) == 1 and img.runtime_config()["Entrypoint"] == ["/hello"]
    finally:
        img.store.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_metadata_is_one_clear_error(tmp_path, name):
    *docs, fix = _case(name)
    layout = write_layout(tmp_path / "img", *docs, fix_digests=fix)
    work = tmp_path / "work"
    work.mkdir()
    proc = _smith("unpack", "--output", "out", layout, cwd=work)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smith unpack: error: %s: " % layout), proc.stderr
    assert CASES[name] in lines[0], lines[0]
    assert os.listdir(str(work)) == []  # no output, no temp dir left behind


def test_minimize_and_image_base_report_hostile_metadata_too(tmp_path):
    """The other readers of a layout (minimize, image --base) go through the same checks."""
    *docs, fix = _case("manifests_not_objects")
    layout = write_layout(tmp_path / "img", *docs, fix_digests=fix)
    work = tmp_path / "work"
    work.mkdir()
    proc = _smith("minimize", "--output", "t.tar", layout, cwd=work)
    assert proc.returncode == 1 and proc.stderr.startswith("smith minimize: error: %s: index.json manifests[0]"
                                                           % layout), proc.stderr
    (work / "cfg.json").write_text("{}")
    proc = _smith("image", "--output", "out", "--tag", "t", "--config", "cfg.json", "--base", layout, cwd=work)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "manifests[0]" in proc.stderr, proc.stderr
    assert sorted(os.listdir(str(work))) == ["cfg.json"]


def _docker_archive(path, manifest_json) -> str:
    with tarfile.open(str(path), "w") as t:
        data = _raw(manifest_json)
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    return str(path)


@pytest.mark.parametrize("manifest_json,message", [
    ([5], "manifest.json [0]: must be a JSON object, not integer"),
    ([{"Config": 5}], "manifest.json [0]: the field 'Config' must be a JSON string, not integer"),
    ([{"Config": "c.json", "Layers": "l.tar"}], "the field 'Layers' must be a JSON array, not string"),
    ([{"Config": "c.json", "RepoTags": [1]}], "'RepoTags' must hold only strings, not integer"),
    (b"[" * 100000, "manifest.json: JSON nested too deeply"),
], ids=["entry_not_an_object", "config_not_a_string", "layers_not_a_list", "repotags_not_strings", "deep"])
def test_hostile_docker_archive_manifest(tmp_path, manifest_json, message):
    archive = _docker_archive(tmp_path / "a.tar", manifest_json)
    with pytest.raises(SmithError) as e:
        open_image(archive, ref="x")
    assert str(e.value).startswith(archive + ": ") and message in str(e.value), e.value


# -- properties: any JSON anywhere in the documents gives a SmithError or an image --------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False) |
    st.sampled_from(["", "latest", "sha256:" + "0" * 64, "sha512:" + "a" * 128, "sha256:" + "A" * 64,
                     "application/vnd.oci.image.index.v1+json", OCI_MANIFEST, LAYER_GZ, "linux", "amd64"]) |
    st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["manifests", "layers", "config", "digest", "size", "mediaType", "annotations",
                         "platform", "os", "architecture", "rootfs", "diff_ids", "Env", "Entrypoint", "Cmd",
                         "Labels", "User", "x"]), children, max_size=5),
    max_leaves=20)


def _paths(doc, prefix=()):
    """Every (container path, key) of a document, to put a generated value at."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _put(doc, path, value):
    doc = copy.deepcopy(doc)
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return doc


@st.composite
def _hostile_docs(draw):
    index, manifest, config, blob = _docs()
    docs = [index, manifest, config]
    for _ in range(draw(st.integers(1, 3))):
        which = draw(st.integers(0, 2))
        choice = draw(st.integers(0, 2))
        if choice == 0 and _paths(docs[which]):  # replace a value somewhere
            path = draw(st.sampled_from(_paths(docs[which])))
            docs[which] = _put(docs[which], path, draw(_json))
        elif choice <= 1:  # replace a whole document
            docs[which] = draw(_json)
        else:  # nest deeply (up to and past the parser's limit)
            depth = draw(st.sampled_from([10, 63, 64, 65, 500, 999, 1001, 5000, 100000]))
            docs[which] = {"x": json.loads("[" * min(depth, 900) + "]" * min(depth, 900))} \
                if depth < 900 else b"[" * depth + b"]" * depth
    fix = draw(st.booleans())
    return docs[0], docs[1], docs[2], blob, fix


def test_generated_metadata_gives_an_image_or_a_smith_error(tmp_path_factory):
    base = tmp_path_factory.mktemp("gen")
    count = [0]

    @given(_hostile_docs())
    def check(case):
        index, manifest, config, blob, fix = case
        count[0] += 1
        layout = write_layout(base / str(count[0]), copy.deepcopy(index) if not isinstance(index, bytes) else index,
                              copy.deepcopy(manifest) if not isinstance(manifest, bytes) else manifest,
                              config, blob, fix_digests=fix)
        try:
            img = open_image(layout)
        except SmithError as e:
            assert str(e).startswith(layout), e
        else:
            img.store.close()
            assert all(isinstance(x.digest, str) and isinstance(x.size, int) for x in img.layers)
            assert isinstance(img.runtime_config()["Env"], list)

    check()
