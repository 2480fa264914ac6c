"""Property-based tests of the one unpacker (smith.untar) with generated hostile tars.

Property: whatever the tar (names with "..", "/", ".", NUL-free but long and deep paths,
symlinks and hardlinks in every order and to every kind of target, duplicates, whiteouts and
opaque markers, devices), extracting it either raises a SmithError or succeeds, and in both
cases nothing outside the target changed: a sentinel directory next to it (files, a symlink
and a directory the tar's links point at) keeps its listing, contents, modes, owners, link
counts and mtimes; the target can then be removed entirely by safe_fs.remove_tree.
The example count comes from the hypothesis profile (conftest.py: `ci` by default, `long`
with SMITH_HYPOTHESIS_PROFILE=long, as bench/ does).
"""
import io
import os
import tarfile

import pytest
from hypothesis import example, given, strategies as st

from smith import untar
from smith.errors import SmithError
from smith.safe_fs import remove_tree

SENTINEL = "sentinel"

component = st.one_of(
    st.sampled_from(["a", "b", "c", ".", "..", "", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh..",
                     ".wh.", "sentinel", "x" * 255, "y" * 256]),
    st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
            min_size=1, max_size=5),
)


# Most names come from a small pool so that entries collide (duplicates, links through links).
POOL = ["a", "b", "c", "a/b", "a/b/c", "b/c", "a/.wh.b", ".wh.a", "a/.wh..wh..opq"]


@st.composite
def names(draw):
    if draw(st.integers(0, 9)) < 6:
        return draw(st.sampled_from(POOL))
    if draw(st.integers(0, 20)) == 0:  # deep: near and past the depth cap
        parts = ["d"] * draw(st.integers(250, 270)) + [draw(component)]
    else:
        parts = draw(st.lists(component, min_size=1, max_size=5))
    name = "/".join(parts)
    prefix = draw(st.sampled_from(["", "", "", "/", "./", "../"]))
    return prefix + name + draw(st.sampled_from(["", "", "/"]))


# "@S" stands for the sentinel's absolute path (known only when the test runs).
SENTINEL_TARGETS = ["@S/file", "@S/dir", "@S/link", "@S", "../" + SENTINEL + "/file"]


def link_targets():
    return st.one_of(
        names(),
        st.sampled_from(SENTINEL_TARGETS),
        st.sampled_from(SENTINEL_TARGETS),
        st.sampled_from(["../../../../..", "/", ".", "..", "a", "a/b", "/etc/passwd", "t" * 5000]),
    )


@st.composite
def entries(draw, earlier=()):
    kind = draw(st.sampled_from(["file", "file", "dir", "dir", "sym", "sym", "link", "link",
                                 "fifo", "chr"]))
    # Often reuse an earlier name (a duplicate), or link to one (links through links).
    if earlier and draw(st.booleans()):
        name = draw(st.sampled_from(earlier))
    else:
        name = draw(names())
    arg = None
    if kind == "file":
        arg = draw(st.binary(max_size=64))
    elif kind in ("sym", "link"):
        if earlier and draw(st.booleans()):
            arg = draw(st.sampled_from(earlier))
        else:
            arg = draw(link_targets())
    mode = draw(st.sampled_from([0o644, 0o755, 0o6777, 0o4755, 0o000, 0o555, 0o1777]))
    uid = draw(st.sampled_from([0, 10, 4242]))
    return name, kind, arg, mode, uid


@st.composite
def tars(draw, max_size: int = 12):
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        out.append(draw(entries(tuple(e[0] for e in out))))
    return out


def tar_bytes(members, sentinel: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, arg, mode, uid in members:
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, uid, 12345
            if kind == "file":
                ti.size = len(arg)
                tf.addfile(ti, io.BytesIO(arg))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
                       "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            ti.linkname = (arg or "").replace("@S", sentinel)
            tf.addfile(ti)
    return buf.getvalue()


def make_sentinel(path: str) -> None:
    os.mkdir(path)
    with open(os.path.join(path, "file"), "w") as f:
        f.write("do not touch\n")
    os.chmod(os.path.join(path, "file"), 0o600)
    os.mkdir(os.path.join(path, "dir"))
    os.symlink("file", os.path.join(path, "link"))


def snapshot(top: str):
    out = {}
    stack = [top]
    while stack:
        d = stack.pop()
        for n in sorted(os.listdir(d)):
            p = os.path.join(d, n)
            st_ = os.lstat(p)
            data = None
            if os.path.isdir(p) and not os.path.islink(p):
                stack.append(p)
            elif os.path.islink(p):
                data = os.readlink(p)
            else:
                with open(p, "rb") as f:
                    data = f.read()
            out[p] = (st_.st_mode, st_.st_uid, st_.st_gid, st_.st_nlink, st_.st_mtime_ns, data)
    return out


def _check(tmp: str, layers, whiteouts: str) -> None:
    sentinel = os.path.join(tmp, SENTINEL)
    dest = os.path.join(tmp, "dest")
    os.mkdir(dest)
    before = snapshot(sentinel)
    parent_before = sorted(os.listdir(tmp))
    try:
        for i, layer in enumerate(layers):
            untar.extract(io.BytesIO(tar_bytes(layer, sentinel)), dest, "layer %d" % i, whiteouts,
                          owners=whiteouts == untar.OVERLAY)
    except SmithError as e:
        assert str(e).startswith("layer "), e  # names the input
    assert snapshot(sentinel) == before
    assert sorted(os.listdir(tmp)) == parent_before
    remove_tree(dest)
    assert not os.path.lexists(dest)
    remove_tree(tmp)  # thousands of examples in the long profile: leave nothing behind


def _fresh(tmp_path_factory) -> str:
    tmp = str(tmp_path_factory.mktemp("u"))
    make_sentinel(os.path.join(tmp, SENTINEL))
    return tmp


# The attacks of issue 15, always tried first (then hypothesis explores around them).
KNOWN = [
    [("x", "sym", "@S/file", 0o777, 0), ("x", "file", b"pwned", 0o644, 0)],
    [("x", "sym", "@S/file", 0o777, 0), ("y", "link", "x", 0o6777, 4242)],
    [("x", "sym", "@S", 0o777, 0), ("x/file", "file", b"pwned", 0o644, 0)],
    [("x", "sym", "@S/dir", 0o777, 0), ("x", "dir", None, 0o777, 4242)],
    [("y", "link", "@S/file", 0o6777, 4242)],
    [("y", "link", "../sentinel/file", 0o6777, 4242)],
    [("a", "dir", None, 0o755, 0), ("a/.wh...", "file", b"", 0o644, 0)],
]


def _examples(wrap):
    def deco(f):
        for k in KNOWN:
            f = example(wrap(k))(f)
        return f
    return deco


@_examples(lambda k: [k])
@given(st.lists(tars(), min_size=1, max_size=3))
def test_apply_never_touches_anything_outside(tmp_path_factory, layers) -> None:
    _check(_fresh(tmp_path_factory), layers, untar.APPLY)


@_examples(lambda k: k)
@given(tars(16))
def test_tree_tars_never_touch_anything_outside(tmp_path_factory, tar) -> None:
    _check(_fresh(tmp_path_factory), [tar], untar.NONE)


@_examples(lambda k: k)
@given(tars())
def test_overlay_layers_never_touch_anything_outside(tmp_path_factory, tar) -> None:
    if os.geteuid() != 0:  # whiteouts as 0/0 devices and trusted xattrs need root
        return
    _check(_fresh(tmp_path_factory), [tar], untar.OVERLAY)


@given(st.lists(st.tuples(st.sampled_from(["a", "a/b", "a/b/c", "b"]),
                          st.sampled_from(["file", "dir", "sym", "link"])), max_size=10))
def test_a_later_entry_replaces_an_earlier_one(tmp_path_factory, spec) -> None:
    """Duplicates in every order: the result holds what the last entry of each name says
    (as `tar -x` and runtimes do), or the tar is refused."""
    tmp = _fresh(tmp_path_factory)
    members = []
    for name, kind in spec:
        arg = {"file": b"data-" + name.encode(), "dir": None, "sym": "@S",
               "link": "b"}[kind]
        members.append((name, kind, arg, 0o644, 0))
    dest = os.path.join(tmp, "dest")
    os.mkdir(dest)
    try:
        untar.extract(io.BytesIO(tar_bytes(members, os.path.join(tmp, SENTINEL))), dest, "t")
    except SmithError:
        pass
    else:
        last = {}
        for name, kind in spec:
            last[name] = kind
            for other in list(last):  # a new entry at a name drops what was below the old one
                if other.startswith(name + "/") and kind != "dir":
                    del last[other]
        for name, kind in last.items():
            p = os.path.join(dest, name)
            if not os.path.lexists(p):
                continue  # removed by a later entry at a parent name
            st_ = os.lstat(p)
            want = {"file": "reg", "link": "reg", "dir": "dir", "sym": "lnk"}[kind]
            got = "dir" if os.path.isdir(p) and not os.path.islink(p) else \
                "lnk" if os.path.islink(p) else "reg"
            if kind == "link" and got == "lnk":
                continue  # a hardlink to a symlink is that symlink
            assert got == want, (name, kind, st_)
    remove_tree(dest)


def _gz_layer(members) -> bytes:
    import gzip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), 1)


def test_layers_decompressed_ahead_give_the_same_result_and_errors(tmp_path) -> None:
    """apply_layer decompresses on a thread of its own, ahead of the extraction: the same files
    and diff_id; a refused entry or a corrupt stream is still an error, and no reading thread
    is left behind either way."""
    import hashlib
    import threading
    big = os.urandom(3 << 20)
    blob = _gz_layer([("a/big.bin", big), ("a/small", b"x" * 100)])
    import gzip
    dest = tmp_path / "ok"
    dest.mkdir()
    got = untar.apply_layer(io.BytesIO(blob), str(dest), "ok layer")
    assert got == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    assert (dest / "a" / "big.bin").read_bytes() == big
    bad = _gz_layer([("../escape", b"no"), ("z/big.bin", big)])
    (tmp_path / "bad").mkdir()
    with pytest.raises(SmithError, match="escape"):
        untar.apply_layer(io.BytesIO(bad), str(tmp_path / "bad"), "bad layer")
    (tmp_path / "cut").mkdir()
    with pytest.raises(SmithError, match="cut layer"):
        untar.apply_layer(io.BytesIO(blob[:len(blob) // 2]), str(tmp_path / "cut"), "cut layer")
    assert not [t for t in threading.enumerate() if t.name == "smith-inflate"]
    assert not (tmp_path / "escape").exists()


def test_a_skipped_device_is_named_escaped(tmp_path, capsys) -> None:
    """The note about a skipped device or fifo quotes the archive's entry name: an OSC in it
    reached the terminal as is before."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("dev/\x1b]2;owned\x07fifo")
        info.type = tarfile.FIFOTYPE
        tf.addfile(info)
    buf.seek(0)
    (tmp_path / "out").mkdir()
    untar.extract(buf, str(tmp_path / "out"), "a layer")
    err = capsys.readouterr().err
    assert "skipping device/fifo /dev/\\x1b]2;owned\\x07fifo\n" in err and "\x1b" not in err, err
