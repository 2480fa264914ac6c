"""zstd layers (application/vnd.oci.image.layer.v1.tar+zstd): deterministic for any thread
count, the same tar as the gzip layer, readable by the zstd CLI, skopeo, umoci and the
launcher's layer store."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from smith.errors import SmithError
from smith.launch.layer_store import LayerStore
from smith.testutil.launch import new_store, remove_store
from smith.oci import image, layer, tree
from smith.oci.deterministic_zstd import ZstdSink
from smith.oci.image_source import open_image
from smith.testutil.debian import require_tools, tool_env

zstandard = pytest.importorskip("zstandard")


def sample_records(root):
    os.makedirs(os.path.join(root, "usr", "lib"))
    for i in range(40):
        with open(os.path.join(root, "usr", "lib", "f%02d" % i), "wb") as f:
            # compressible but not trivial, and over several zstd jobs at 2 MiB+
            f.write(hashlib.sha256(b"%d" % i).hexdigest().encode() * (2000 + 500 * i))
    os.symlink("lib", os.path.join(root, "usr", "lib64"))
    return layer.plan(tree.read_dir(root, ""))


def test_zstd_digest_does_not_depend_on_the_number_of_threads(tmp_path):
    data = b"".join(hashlib.sha512(b"%d" % i).digest() * (i % 7 + 1) for i in range(200000))
    digests = set()
    for threads in (1, 2, 3, 8):
        out = io.BytesIO()
        sink = ZstdSink(out, threads=threads)
        for start in range(0, len(data), 1 << 20):
            sink.write(data[start:start + (1 << 20)])
        sink.close()
        assert sink.sha256.hexdigest() == hashlib.sha256(out.getvalue()).hexdigest()
        digests.add(sink.sha256.hexdigest())
        frame = zstandard.get_frame_parameters(out.getvalue())
        assert frame.has_checksum
        assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(out.getvalue())).read() \
            == data
    assert len(digests) == 1


def test_zstd_layer_is_the_gzip_layers_tar_and_the_zstd_cli_reads_it(tmp_path, monkeypatch):
    records = sample_records(str(tmp_path / "root"))
    by_threads = set()
    for threads in ("1", "4"):
        monkeypatch.setenv("SMITH_GZIP_THREADS", threads)
        desc = layer.write_layer_dir(records, str(tmp_path / ("zst" + threads)), 10, 10, 0,
                                     "zstd")
        by_threads.add(desc["digest"])
    gz = layer.write_layer_dir(records, str(tmp_path / "gz"), 10, 10, 0, "gzip")
    assert len(by_threads) == 1
    assert desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert desc["diff_id"] == gz["diff_id"] and desc["digest"] != gz["digest"]
    blob = str(tmp_path / "zst1" / "layer.tar.zst")
    assert json.load(open(str(tmp_path / "zst1" / "layer.json"))) == desc
    require_tools("zstd")
    tar = subprocess.run(["zstd", "-d", "-c", blob], env=tool_env(), stdout=subprocess.PIPE,
                         check=True).stdout
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == desc["diff_id"]


def _layout(tmp_path, compression, name):
    root = tmp_path / "root"
    if not root.exists():
        sample_records(str(root))
    records = layer.plan(tree.read_dir(str(root), ""))
    if not (tmp_path / "gzlayer").exists():  # the layer is built gzip; the image recompresses
        layer.write_layer_dir(records, str(tmp_path / "gzlayer"), 10, 10, 0, "gzip")
    out = str(tmp_path / name)
    entry = image.write_layout(out, "latest", {"entrypoint": ["/usr/lib/f00"]},
                               [str(tmp_path / "gzlayer")], compression=compression)
    return out, entry


def test_zstd_image_has_zstd_layers_with_the_diff_ids_of_the_gzip_image(tmp_path):
    zst, zentry = _layout(tmp_path, "zstd", "zst")
    gz, gentry = _layout(tmp_path, "gzip", "gz")
    again, aentry = _layout(tmp_path, "zstd", "zst-again")
    assert zentry["digest"] == aentry["digest"] != gentry["digest"]
    zimg, gimg = open_image(zst), open_image(gz)
    assert [l.media_type for l in zimg.layers] == [layer.ZSTD_LAYER_MEDIA_TYPE] * 2
    assert [l.diff_id for l in zimg.layers] == [l.diff_id for l in gimg.layers]


def test_unknown_compression_is_refused(tmp_path):
    with pytest.raises(SmithError, match="use gzip or zstd"):
        _layout(tmp_path, "brotli", "x")


def test_skopeo_reads_a_zstd_image(tmp_path):
    """skopeo 1.9 (Debian bookworm) decompresses zstd layers: recompressed to gzip, each
    layer's tar is the one its diff_id names. (umoci 0.4.7 of bookworm cannot: it refuses
    the media type `tar+zstd`; its zstd support came later.)"""
    require_tools("skopeo")
    zst, entry = _layout(tmp_path, "zstd", "zst")
    env = tool_env()
    copied = subprocess.run(["skopeo", "copy", "--dest-compress-format", "gzip",
                             "oci:%s:latest" % zst, "oci:%s:latest" % (tmp_path / "regz")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert copied.returncode == 0, copied.stderr
    regz = open_image(str(tmp_path / "regz"))
    assert [l.media_type for l in regz.layers] == [layer.LAYER_MEDIA_TYPE] * 2
    assert [l.diff_id for l in regz.layers] == [l.diff_id for l in open_image(zst).layers]
    for lay in regz.layers:
        with regz.store.open(lay.name) as f:
            tar = subprocess.run(["gzip", "-dc"], stdin=f, stdout=subprocess.PIPE,
                                 env=env, check=True).stdout
        assert "sha256:" + hashlib.sha256(tar).hexdigest() == lay.diff_id


def test_podman_pulls_a_zstd_image(tmp_path):
    """podman 4.3 (bookworm) stores a zstd image; its root file system has our files."""
    require_tools("podman")
    zst, entry = _layout(tmp_path, "zstd", "zst")
    runroot = tempfile.mkdtemp(prefix="smith-prun-")  # podman wants a runroot < 50 characters
    podman = ["podman", "--root", str(tmp_path / "proot"), "--runroot", runroot,
              "--storage-driver", "vfs"]
    env = tool_env()

    def run(*args):
        proc = subprocess.run(podman + list(args), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()
    try:
        image_id = run("pull", "-q", "oci:%s:latest" % zst)
        mounted = run("image", "mount", image_id)
        with open(os.path.join(mounted, "usr", "lib", "f03"), "rb") as f:
            assert f.read() == hashlib.sha256(b"3").hexdigest().encode() * 3500
        assert os.readlink(os.path.join(mounted, "usr", "lib64")) == "lib"
        run("image", "unmount", image_id)
    finally:
        subprocess.run(podman + ["rmi", "-a", "-f"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(runroot, ignore_errors=True)


def test_the_launcher_layer_store_unpacks_zstd_layers(tmp_path):
    zst, _ = _layout(tmp_path, "zstd", "zst")
    store = new_store()
    try:
        img = open_image(zst)
        s = LayerStore(store)
        paths = [s.ensure(img.store, l)[0] for l in img.layers]
        with open(os.path.join(paths[-1], "usr", "lib", "f05"), "rb") as f:
            assert f.read() == hashlib.sha256(b"5").hexdigest().encode() * 4500
    finally:
        remove_store(store)
