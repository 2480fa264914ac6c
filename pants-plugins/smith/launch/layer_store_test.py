import concurrent.futures
import multiprocessing
import os
import stat
import subprocess

import pytest

from smith import linux
from smith.errors import SmithError
from smith.oci.image_source import open_image
from smith.launch.layer_store import LayerStore
from smith.testutil.launch import busybox_image, new_store, remove_store
from smith.testutil.debian import tool_env

WHITEOUT_IMAGE = [({"etc/gone": "g", "etc/keep": "k", "opq/a": "a"}, []),
                  ({"etc/new": "n", "opq/b": "b"}, ["etc/gone", "opq/*"])]


@pytest.fixture
def store():
    path = new_store()
    yield path
    remove_store(path)


def _ensure_all(store: str, layout: str) -> list:
    s = LayerStore(store)
    image = open_image(layout)
    return [s.ensure(image.store, layer)[1] for layer in image.layers]


def test_concurrent_processes_unpack_each_layer_once(store):
    layout = busybox_image()
    n = len(open_image(layout).layers)
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(8, mp_context=ctx) as pool:
        fresh = list(pool.map(_ensure_all, [store] * 8, [layout] * 8))
    # Every layer was unpacked by exactly one of the 8 processes; the others reused it.
    assert [sum(f[i] for f in fresh) for i in range(n)] == [1] * n
    layers = os.path.join(store, "layers", "sha256")
    assert sorted(e for e in os.listdir(layers) if not e.endswith(".lock")) == \
        sorted(l.diff_id.split(":")[1] for l in open_image(layout).layers)


def test_owners_come_from_the_tar(store):
    image = open_image(busybox_image())
    s = LayerStore(store)
    paths = [s.ensure(image.store, layer)[0] for layer in image.layers]
    busybox = [os.path.join(p, "bin", "busybox") for p in paths
               if os.path.exists(os.path.join(p, "bin", "busybox"))]
    assert len(busybox) == 1
    st = os.lstat(busybox[0])
    assert (st.st_uid, st.st_gid) == (10, 10)
    assert st.st_mode & 0o777 == 0o755


def test_whiteouts_become_overlay_whiteouts(store, tmp_path):
    image = open_image(busybox_image(WHITEOUT_IMAGE))
    s = LayerStore(store)
    dirs = [s.ensure(image.store, layer)[0] for layer in image.layers]
    top = dirs[-1]
    gone = os.lstat(os.path.join(top, "etc", "gone"))
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(os.path.join(top, "opq"), "trusted.overlay.opaque") == b"y"
    assert not any(n.startswith(".wh.") for _, _, files in os.walk(top) for n in files)
    # And a real overlay of the stored layers shows the image as the spec defines it.
    merged = tmp_path / "merged"
    merged.mkdir()
    linux.mount("overlay", str(merged), "overlay", linux.MS_RDONLY,
                 "lowerdir=" + ":".join(reversed(dirs)))
    try:
        assert sorted(os.listdir(merged / "etc")) == ["keep", "new"]
        assert sorted(os.listdir(merged / "opq")) == ["b"]
        assert (merged / "bin" / "busybox").is_file()
    finally:
        linux.umount(str(merged))


def test_corrupt_blob_is_refused_and_leaves_nothing(store, tmp_path):
    src = busybox_image()
    layout = tmp_path / "layout"
    subprocess.run(["cp", "-a", src, str(layout)], env=tool_env(), check=True)
    image = open_image(str(layout))
    victim = image.layers[-1]
    blob = os.path.join(str(layout), victim.name)
    data = bytearray(open(blob, "rb").read())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    with open(blob, "wb") as f:
        f.write(data)
    with pytest.raises(SmithError, match="content does not match its name"):
        LayerStore(store).ensure(image.store, victim)
    parent = os.path.dirname(LayerStore(store).path(victim.diff_id))
    assert [e for e in os.listdir(parent) if not e.endswith(".lock")] == []


def test_leftovers_of_a_dead_unpacker_are_removed(store):
    image = open_image(busybox_image())
    layer = image.layers[-1]
    s = LayerStore(store)
    final = s.path(layer.diff_id)
    os.makedirs(os.path.dirname(final))
    half = final.replace(os.path.basename(final), ".tmp-%s-dead" % os.path.basename(final))
    os.makedirs(os.path.join(half, "bin"))  # as if its unpacker was killed half way
    assert s.ensure(image.store, layer) == (final, True)
    assert not os.path.exists(half)
