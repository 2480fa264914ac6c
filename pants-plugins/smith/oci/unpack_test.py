import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zlib

import pytest
import zstandard

from smith.errors import SmithError
from smith.oci import unpack, unpack_cli
from smith.safe_fs import remove_tree


def tar_bytes(entries):
    """entries: (name, kind, data_or_linkname) with kind in file/dir/sym/link/fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o755 if kind == "dir" else 0o644
            if kind == "file":
                ti.size = len(arg)
                tf.addfile(ti, io.BytesIO(arg))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
                       "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            ti.linkname = arg or ""
            tf.addfile(ti)
    return buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(root, layers, compress="gzip", lie_digest=False, lie_diff_id=False,
                 docker_types=False, nested=False):
    """An OCI layout holding the given uncompressed layer tars, optionally lying."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        (blobs / sha(data)[7:]).write_bytes(data)
        return {"digest": sha(data), "size": len(data)}

    descs, diff_ids = [], []
    for plain in layers:
        if compress == "gzip":
            blob, mt = gzip.compress(plain, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
        elif compress == "zstd":
            blob, mt = zstandard.ZstdCompressor().compress(plain), \
                "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            blob, mt = plain, "application/vnd.oci.image.layer.v1.tar"
        if docker_types:
            mt = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        d = put(blob)
        if lie_digest:
            (blobs / d["digest"][7:]).write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
        descs.append(dict(d, mediaType=mt))
        diff_ids.append(sha(plain + b"lie") if lie_diff_id else sha(plain))
    config = put(json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Env": ["A=1"], "Entrypoint": ["/bin/x"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    config["mediaType"] = ("application/vnd.docker.container.image.v1+json" if docker_types
                           else "application/vnd.oci.image.config.v1+json")
    mt = ("application/vnd.docker.distribution.manifest.v2+json" if docker_types
          else "application/vnd.oci.image.manifest.v1+json")
    manifest = put(json.dumps({"schemaVersion": 2, "mediaType": mt, "config": config,
                               "layers": descs}).encode())
    entry = dict(manifest, mediaType=mt, platform={"architecture": "amd64", "os": "linux"})
    if nested:  # a Docker manifest list: arm64 decoy + our amd64 image
        decoy = dict(entry, platform={"architecture": "arm64", "os": "linux"},
                     digest=sha(b"missing"))
        lt = "application/vnd.docker.distribution.manifest.list.v2+json"
        lst = put(json.dumps({"schemaVersion": 2, "mediaType": lt,
                              "manifests": [decoy, entry]}).encode())
        entry = dict(lst, mediaType=lt)
    entry["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return root


def snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            data = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else None
            out[p] = (st.st_mode, st.st_nlink, data)
    return out


@pytest.fixture
def sentinel(tmp_path):
    s = tmp_path / "sentinel"
    (s / "etc").mkdir(parents=True)
    (s / "etc" / "shadow").write_text("root:secret\n")
    return s


HOSTILE = {
    "path traversal": lambda s: [[("../escaped", "file", b"x")]],
    "deep traversal": lambda s: [[("a/../../escaped", "file", b"x")]],
    "absolute path": lambda s: [[(str(s / "abs"), "file", b"x")]],
    "absolute symlink then file through it": lambda s: [
        [("evil", "sym", str(s)), ("evil/planted", "file", b"x")]],
    "relative symlink up then file through it": lambda s: [
        [("d", "dir", None), ("d/up", "sym", "../.."), ("d/up/sentinel/planted", "file", b"x")]],
    "symlink in lower layer then file through it": lambda s: [
        [("evil", "sym", str(s / "etc"))], [("evil/shadow", "file", b"pwned")]],
    "hardlink to absolute /etc/shadow": lambda s: [
        [("shadow", "link", str(s / "etc" / "shadow"))]],
    "hardlink leaving the root": lambda s: [[("shadow", "link", "../sentinel/etc/shadow")]],
    "hardlink through a symlink": lambda s: [
        [("evil", "sym", str(s / "etc")), ("shadow", "link", "evil/shadow")]],
    "whiteout of ..": lambda s: [[("a", "dir", None), ("a/b", "file", b"x")],
                                 [("a/.wh...", "file", b"")]],
}

REASON = {
    "path traversal": "contains '..'",
    "deep traversal": "contains '..'",
    "absolute path": "is an absolute path",
    "absolute symlink then file through it": "/evil is a symlink",
    "relative symlink up then file through it": "/d/up is a symlink",
    "symlink in lower layer then file through it": "/evil is a symlink",
    "hardlink to absolute /etc/shadow": "hardlink target .* is an absolute path",
    "hardlink leaving the root": "hardlink target .* contains '..'",
    "hardlink through a symlink": "/evil is a symlink",
    "whiteout of ..": "whiteout of '..'",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layers_are_refused_and_nothing_escapes(tmp_path, sentinel, case):
    layout = write_layout(tmp_path / "img", [tar_bytes(l) for l in HOSTILE[case](sentinel)])
    before = snapshot(tmp_path / "sentinel")
    out = tmp_path / "out"
    with pytest.raises(SmithError, match=r"layer sha256:[0-9a-f]{64}: entry .* refused: .*"
                                         + REASON[case]):
        unpack.unpack_image(str(layout), str(out))
    assert snapshot(tmp_path / "sentinel") == before
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["img", "sentinel"]  # no temp dir left behind
    assert not (tmp_path / "escaped").exists()


def test_lying_digest_and_diff_id_are_refused(tmp_path):
    layer = tar_bytes([("f", "file", b"hello")])
    bad = write_layout(tmp_path / "bad-digest", [layer], lie_digest=True)
    with pytest.raises(SmithError, match=r"content does not match its name"):
        unpack.unpack_image(str(bad), str(tmp_path / "out"))
    bad = write_layout(tmp_path / "bad-diff", [layer], lie_diff_id=True)
    with pytest.raises(SmithError, match=r"config says diff_id"):
        unpack.unpack_image(str(bad), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    good = write_layout(tmp_path / "good", [layer])
    index = json.loads((good / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:" + "0" * 64
    (good / "index.json").write_text(json.dumps(index))
    with pytest.raises(SmithError, match=r"missing|cannot read"):
        unpack.unpack_image(str(good), str(tmp_path / "out"))


@pytest.mark.parametrize("compress,docker_types,nested", [
    ("gzip", False, False), ("zstd", False, False), ("none", False, False),
    ("gzip", True, True)])
def test_layers_apply_in_order_with_whiteouts(tmp_path, compress, docker_types, nested):
    lower = tar_bytes([("etc", "dir", None), ("etc/keep", "file", b"k"),
                       ("etc/gone", "file", b"g"), ("opt", "dir", None),
                       ("opt/old", "file", b"o"), ("opt/sub", "dir", None),
                       ("opt/sub/old", "file", b"o"), ("dev", "dir", None),
                       ("dev/null", "chr", None), ("fifo", "fifo", None)])
    upper = tar_bytes([("etc/.wh.gone", "file", b""), ("opt/.wh..wh..opq", "file", b""),
                       ("opt/sub", "dir", None), ("opt/sub/new", "file", b"n"),
                       ("etc/link", "link", "etc/keep"), ("etc/sym", "sym", "/etc/keep")])
    layout = write_layout(tmp_path / "img", [lower, upper], compress=compress,
                          docker_types=docker_types, nested=nested)
    out = tmp_path / "out"
    assert unpack_cli.main(["--output", str(out), "--config-out", str(tmp_path / "c.json"),
                            "%s:latest" % layout]) == 0
    assert (out / "etc" / "keep").read_bytes() == b"k"
    assert not (out / "etc" / "gone").exists()
    assert sorted(os.listdir(out / "opt")) == ["sub"]
    assert sorted(os.listdir(out / "opt" / "sub")) == ["new"]
    assert os.stat(out / "etc" / "link").st_ino == os.stat(out / "etc" / "keep").st_ino
    assert os.readlink(out / "etc" / "sym") == "/etc/keep"
    assert not (out / "dev" / "null").exists() and not (out / "fifo").exists()
    cfg = json.loads((tmp_path / "c.json").read_text())
    assert cfg["Env"] == ["A=1"] and cfg["Entrypoint"] == ["/bin/x"] and cfg["Cmd"] is None


def test_unpack_tree_tar_is_safe_and_ignores_whiteout_names(tmp_path, sentinel):
    good = tmp_path / "good.tar"
    good.write_bytes(tar_bytes([("usr/.wh.x", "file", b"kept as a file")]))
    unpack.unpack_tree_tar(str(good), str(tmp_path / "t"))
    assert (tmp_path / "t" / "usr" / ".wh.x").read_bytes() == b"kept as a file"
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_bytes([("evil", "sym", str(sentinel)), ("evil/x", "file", b"x")]))
    before = snapshot(sentinel)
    with pytest.raises(SmithError, match=r"bad.tar: entry 'evil/x' refused"):
        unpack.unpack_tree_tar(str(bad), str(tmp_path / "t2"))
    assert snapshot(sentinel) == before


def test_apply_one_layer_file_checks_its_digest(tmp_path):
    blob = gzip.compress(tar_bytes([("a/b", "file", b"x")]))
    path = tmp_path / "blob"
    path.write_bytes(blob)
    dest = tmp_path / "dest"
    dest.mkdir()
    diff_id = unpack.apply_layer_file(str(path), str(dest), digest=sha(blob))
    assert diff_id == sha(gzip.decompress(blob))
    assert (dest / "a" / "b").read_bytes() == b"x"
    with pytest.raises(SmithError, match=r"refusing to apply"):
        unpack.apply_layer_file(str(path), str(dest), digest=sha(b"other"))
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(SmithError, match=r"not a readable tar|corrupt"):
        unpack.apply_layer_file(str(path), str(dest))


def _layer_blob(layout):
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    layers = json.loads((layout / "blobs" / "sha256" / manifest[7:]).read_text())["layers"]
    return layout / "blobs" / "sha256" / layers[0]["digest"][7:]


def test_a_layout_blob_that_is_not_a_regular_file_is_refused(tmp_path):
    """A blob that is a symlink to /dev/zero hung `smith unpack` (read to no end)."""
    import signal
    layout = write_layout(tmp_path / "img", [tar_bytes([("f", "file", b"x")])])
    blob = _layer_blob(layout)
    blob.unlink()
    os.symlink("/dev/zero", str(blob))
    old = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("smith unpack hangs on /dev/zero"))
    signal.alarm(30)
    try:
        with pytest.raises(SmithError, match=r"img: /blobs/sha256/[0-9a-f]{64} is a symlink, not a "
                                             r"regular file; refusing to read it"):
            unpack.unpack_image(str(layout), str(tmp_path / "out"))
        blob.unlink()
        os.mkfifo(str(blob))
        with pytest.raises(SmithError, match=r"is not a regular file"):
            unpack.unpack_image(str(layout), str(tmp_path / "out"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_a_blob_longer_than_its_descriptor_is_read_only_to_size_plus_one(tmp_path, monkeypatch):
    layout = write_layout(tmp_path / "img", [tar_bytes([("f", "file", b"x")])])
    blob = _layer_blob(layout)
    with open(str(blob), "ab") as f:
        f.truncate(64 << 20)  # the server of the blob streams on and on
    reads = []
    real_open = unpack.verify_blob.__globals__["Store"].open

    def counting_open(self, name):
        f = real_open(self, name)
        real_read = f.read
        def read(n=-1):
            data = real_read(n)
            reads.append((name, len(data)))
            return data
        f.read = read  # type: ignore[assignment]
        return f

    monkeypatch.setattr(unpack.verify_blob.__globals__["Store"], "open", counting_open)
    with pytest.raises(SmithError, match=r"is more than the \d+ bytes its descriptor says"):
        unpack.unpack_image(str(layout), str(tmp_path / "out"))
    assert sum(n for name, n in reads if name == "blobs/sha256/" + blob.name) < 1 << 20


# --- caps on archive work -------------------------------------------------------------------

def _zeros_layer(size):
    """A gzip'ed tar holding one file of `size` zero bytes, built without holding it in memory."""
    header = tarfile.TarInfo("big")
    header.size = size
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(header.tobuf(format=tarfile.PAX_FORMAT))]
    chunk = b"\0" * (1 << 20)
    left = size
    while left:
        out.append(comp.compress(chunk[:min(left, len(chunk))]))
        left -= min(left, len(chunk))
    out.append(comp.compress(b"\0" * (-size % 512 + 1024)))
    out.append(comp.flush())
    return b"".join(out)


def test_a_decompression_bomb_stops_at_the_ratio_cap(tmp_path):
    """A small gzip that inflates ~1000:1 used to be written out in full before the diff_id
    check refused it; now writing stops once the output passes 100x the compressed input."""
    blob = _zeros_layer(512 << 20)
    assert len(blob) < 1 << 20
    path = tmp_path / "bomb.tar.gz"
    path.write_bytes(blob)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SmithError, match=r"decompression bomb.*--max-compression-ratio or "
                                         r"SMITH_MAX_COMPRESSION_RATIO"):
        unpack.apply_layer_file(str(path), str(dest))
    assert os.lstat(str(dest / "big")).st_size <= 101 << 20  # not 512 MiB
    remove_tree(str(dest))
    # Raised, it passes.
    dest.mkdir()
    unpack.apply_layer_file(str(path), str(dest), limits=unpack.Limits(ratio=2000))
    assert os.lstat(str(dest / "big")).st_size == 512 << 20
    remove_tree(str(dest))  # pytest keeps the last runs' temp dirs: do not leave 512 MiB there


def test_layer_and_image_byte_caps(tmp_path):
    layer = tar_bytes([("f%d" % i, "file", os.urandom(100 << 10)) for i in range(6)])  # 600 KiB
    layout = write_layout(tmp_path / "img", [layer, tar_bytes([("g", "file", os.urandom(500 << 10))])])
    with pytest.raises(SmithError, match=r"decompresses to more than 512K bytes, the cap per "
                                         r"layer; raise it with --max-layer-bytes"):
        unpack.unpack_image(str(layout), str(tmp_path / "out"), limits=unpack.Limits(layer_bytes=512 << 10))
    with pytest.raises(SmithError, match=r"the image's layers decompress to more than 1M bytes, "
                                         r"the cap per image; raise it with --max-image-bytes"):
        unpack.unpack_image(str(layout), str(tmp_path / "out"), limits=unpack.Limits(image_bytes=1 << 20))
    assert sorted(os.listdir(tmp_path)) == ["img"]
    unpack.unpack_image(str(layout), str(tmp_path / "out"), limits=unpack.Limits(image_bytes=2 << 20))


@pytest.mark.parametrize("entries,limits,message", [
    ([("f%d" % i, "file", b"") for i in range(11)], {"entries": 10},
     r"more than 10 entries, the cap per archive; raise it with --max-entries"),
    ([("a" * 200 + "/" + "b" * 200 + "/c", "file", b"")], {"path_length": 300},
     r"the name is 403 bytes long, more than the cap of 300; raise it with --max-path-length"),
    ([("x", "sym", "t" * 5000)], {},
     r"symlink target longer than the cap of 4096 bytes"),
    ([("/".join(["d"] * 300), "dir", None)], {},
     r"the name is 300 directories deep, more than the cap of 256; raise it with --max-depth"),
    ([("x" * 256, "file", b"")], {}, r"has a component longer than 255 bytes"),
])
def test_entry_caps(tmp_path, entries, limits, message):
    layout = write_layout(tmp_path / "img", [tar_bytes(entries)])
    with pytest.raises(SmithError, match=message):
        unpack.unpack_image(str(layout), str(tmp_path / "out"), limits=unpack.Limits(**limits))
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_a_huge_pax_header_is_refused_before_it_is_read(tmp_path):
    raw = bytearray(tar_bytes([("f", "file", b"x")]))
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, 1 << 30  # 1 GiB of "pax records" would be read at once
    blob = pax.tobuf(format=tarfile.USTAR_FORMAT) + bytes(raw)
    path = tmp_path / "l.tar"
    path.write_bytes(blob)
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(SmithError, match=r"a pax header of 1073741824 bytes \(at most 1048576\)"):
        unpack.apply_layer_file(str(path), str(dest))


def _deep(depth):
    return [("/".join(["d"] * i), "dir", None) for i in range(1, depth + 1)] + \
        [("/".join(["d"] * depth) + "/f", "file", b"deep")]


def test_a_1200_deep_tree_is_refused_or_removed_without_recursion(tmp_path):
    """A 1200-deep tree gave RecursionError in cleanup and left `.u-*` dirs behind."""
    layout = write_layout(tmp_path / "img", [tar_bytes(_deep(1200))], lie_diff_id=True)
    with pytest.raises(SmithError, match=r"1001 directories deep, more than the cap of 1000"):
        unpack.unpack_image(str(layout), str(tmp_path / "out"), limits=unpack.Limits(depth=1000))
    assert sorted(os.listdir(tmp_path)) == ["img"]
    # With the cap raised, the whole tree is written, then refused (diff_id): removed entirely.
    with pytest.raises(SmithError, match=r"config says diff_id"):
        unpack.unpack_image(str(layout), str(tmp_path / "out"), limits=unpack.Limits(depth=2000))
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_minimize_removes_a_deep_hostile_tree(tmp_path):
    from smith.oci import minimize
    os.mkdir(str(tmp_path / "work"))
    layout = write_layout(tmp_path / "img", [tar_bytes(_deep(1200) + [("ro", "dir", None)])])
    with pytest.raises(SmithError):
        minimize.minimize(str(layout), str(tmp_path / "out.tar"), workdir=str(tmp_path / "work"),
                          limits=unpack.Limits(depth=2000))
    assert os.listdir(str(tmp_path / "work")) == []


def test_cli_errors_name_the_input_and_leave_nothing(tmp_path, capsys):
    from smith import cli
    blob_layout = write_layout(tmp_path / "img", [tar_bytes([("../x", "file", b"x")])])
    os.chdir(str(tmp_path))
    assert cli.main(["unpack", "--output", "out", str(blob_layout)]) == 1
    err = capsys.readouterr().err
    assert re.match(r"smith unpack: error: layer sha256:[0-9a-f]{64}: entry '../x' refused: the name "
                    r"'../x' contains '..'", err), err
    assert cli.main(["unpack", "--max-entries", "zero", "--output", "out", str(blob_layout)]) == 1
    assert "smith unpack: error: --max-entries: 'zero' is not a positive whole number" in \
        capsys.readouterr().err
    assert sorted(os.listdir(str(tmp_path))) == ["img"]
