import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

import smith
from smith.errors import SmithError
from smith.oci import layer_cli
from smith.testutil.debian import tool_env

LONG_DIR = "d" * 120  # > 100 bytes together with its children
UNICODE = "ünïcödé ☃"
NAMES = {
    "bin/tool": (b"#!x\n", 0o4775),  # setuid + group-writable: normalised away
    "etc/app.conf": (b"k=v\n", 0o600),
    "with space/file name.txt": (b"spaces", 0o644),
    UNICODE + "/" + "é" * 40: (b"unicode", 0o640),
    LONG_DIR + "/" + "x" * 90: (b"long", 0o755),
    "/".join(["p" * 60] * 4) + "/" + "z" * 100: (b"very long", 0o644),  # > 255 bytes
}


def smith_cmd(*args, cwd, env_extra=None, umask=None):
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    env.update(env_extra or {})
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([sys.executable, "-m", "smith", *args], cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=pre)


def make_tree(root, umask=0o022, mtime=1234567890):
    old = os.umask(umask)
    try:
        for name, (data, mode) in NAMES.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            os.chmod(p, mode)
        (root / "empty dir").mkdir()
        os.symlink("../etc/app.conf", root / "bin" / "conf-link")
        os.symlink("/" + "t" * 150, root / "bin" / "long-link")
        os.link(root / "bin" / "tool", root / "bin" / "tool-hardlink")
        os.link(root / "bin" / "tool", root / "a-first-hardlink")  # sorts first: holds the bytes
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                os.utime(os.path.join(dirpath, n), (mtime, mtime), follow_symlinks=False)
    finally:
        os.umask(old)


def build(tmp_path, name, umask=0o022, mtime=1234567890, cli_umask=None, extra=(),
          sde="0"):
    src = tmp_path / name / "src"
    src.mkdir(parents=True)
    make_tree(src, umask, mtime)
    out = tmp_path / name / "out"
    proc = smith_cmd("layer", "--output", "out", "--dir", "/=src", "--dir", "/etc/extra=src/etc",
                     "--delete", "/usr/gone", "--delete", "/var/cache/*", *extra,
                     cwd=tmp_path / name, env_extra={"SOURCE_DATE_EPOCH": sde},
                     umask=cli_umask)
    assert proc.returncode == 0, proc.stderr
    return out


def test_layer_reads_back_with_gnu_tar_and_tarfile(tmp_path):
    out = build(tmp_path, "a")
    blob = (out / "layer.tar.gz").read_bytes()
    desc = json.loads((out / "layer.json").read_text())
    assert desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert desc["digest"] == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert desc["size"] == len(blob)
    plain = gzip.decompress(blob)
    assert desc["diff_id"] == "sha256:" + hashlib.sha256(plain).hexdigest()
    # gzip header: deflate, no flags (no file name), mtime 0, OS unknown.
    assert blob[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

    listing = subprocess.run(["tar", "--numeric-owner", "-tvzf", str(out / "layer.tar.gz")],
                             env=tool_env(), stdout=subprocess.PIPE, check=True,
                             text=True).stdout.splitlines()
    assert all(" 10/10 " in line and "1970-01-01 00:00" in line for line in listing), listing
    by_name = {}
    for line in listing:
        perms, rest = line.split(" ", 1)
        name = rest.split("1970-01-01 00:00 ", 1)[1]
        by_name[name.split(" -> ")[0].split(" link to ")[0]] = (perms, name)
    assert by_name["a-first-hardlink"][0] == "-rwxr-xr-x"  # setuid and g+w dropped
    assert by_name["bin/tool"][0] == "hrwxr-xr-x"
    assert by_name["etc/app.conf"][0] == "-rw-r--r--"
    assert by_name["empty dir/"][0] == "drwxr-xr-x"
    assert by_name["bin/conf-link"] == ("lrwxrwxrwx", "bin/conf-link -> ../etc/app.conf")
    assert by_name["bin/tool"][1] == "bin/tool link to a-first-hardlink"
    assert by_name["usr/.wh.gone"][0] == "-rw-r--r--"
    assert "var/cache/.wh..wh..opq" in by_name
    for name in NAMES:
        assert name in by_name

    names = []
    with tarfile.open(out / "layer.tar.gz") as tf:
        for m in tf:
            names.append(m.name)
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (10, 10, "", "", 0)
            assert not set(m.pax_headers) - {"path", "linkpath"}, m.pax_headers
            if m.name in NAMES and not m.islnk():
                assert tf.extractfile(m).read() == NAMES[m.name][0]
            if m.name == "bin/long-link":
                assert m.linkname == "/" + "t" * 150
            if m.name == "a-first-hardlink":
                assert m.isreg() and tf.extractfile(m).read() == b"#!x\n"
    # Parents come before children, everything sorted, no duplicates.
    seen = set()
    for n in names:
        parent = n.rstrip("/").rpartition("/")[0]
        assert not parent or parent in seen, n  # tarfile drops the trailing "/" of dirs
        seen.add(n)
    assert len(seen) == len(names)
    assert "etc/extra/app.conf" in names and "usr" in names
    assert [n for n in names if n.startswith("etc/")] == sorted(
        n for n in names if n.startswith("etc/"))


def test_same_input_gives_same_bytes_whatever_umask_cwd_and_mtimes(tmp_path):
    a = build(tmp_path, "a", umask=0o022, mtime=1000)
    b = build(tmp_path, "b-other-cwd", umask=0o077, mtime=2000000000, cli_umask=0o077)
    assert (a / "layer.tar.gz").read_bytes() == (b / "layer.tar.gz").read_bytes()
    assert (a / "layer.json").read_bytes() == (b / "layer.json").read_bytes()
    c = build(tmp_path, "c", sde="86400")
    assert (c / "layer.tar.gz").read_bytes() != (a / "layer.tar.gz").read_bytes()
    with tarfile.open(c / "layer.tar.gz") as tf:
        assert {m.mtime for m in tf} == {86400}


def test_keep_special_uid_gid_and_exclude(tmp_path):
    out = build(tmp_path, "a", extra=("--keep-special", "--uid", "0", "--gid", "5",
                                      "--exclude", "/with space", "--exclude", "*.conf",
                                      "--mtime", "7"))
    with tarfile.open(out / "layer.tar.gz") as tf:
        members = {m.name: m for m in tf}
    assert members["a-first-hardlink"].mode == 0o4755
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 5, 7)}
    assert not [n for n in members if n.startswith("with space") or n.endswith(".conf")]
    assert members["etc/extra"].isdir()  # directory kept, only its matching files dropped


def test_user_errors_name_the_problem(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("one")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_text("two")
    out = str(tmp_path / "out")
    with pytest.raises(SmithError, match=r"/f differs between --dir /=.*/a .* and --dir /=.*/b"):
        layer_cli.main(["--output", out, "--dir", "/=%s" % (tmp_path / "a"),
                        "--dir", "/=%s" % (tmp_path / "b")])
    with pytest.raises(SmithError, match=r"/f is both deleted"):
        layer_cli.main(["--output", out, "--dir", "/=%s" % (tmp_path / "a"), "--delete", "/f"])
    with pytest.raises(SmithError, match=r"unrecognized arguments: --bogus"):
        layer_cli.main(["--output", out, "--bogus"])
    with pytest.raises(SmithError, match=r"contains '\.\.'"):
        layer_cli.main(["--output", out, "--dir", "/../x=%s" % (tmp_path / "a")])
    os.mkfifo(tmp_path / "a" / "fifo")
    with pytest.raises(SmithError, match=r"fifo.*exclude it"):
        layer_cli.main(["--output", out, "--dir", "/=%s" % (tmp_path / "a")])
    assert not os.path.exists(out) or not os.listdir(out)  # nothing half-written
    # Same content from two sources dedupes.
    (tmp_path / "b" / "f").write_text("one")
    os.unlink(tmp_path / "a" / "fifo")
    assert layer_cli.main(["--output", out, "--dir", "/=%s" % (tmp_path / "a"),
                           "--dir", "/=%s" % (tmp_path / "b")]) == 0
    with tarfile.open(os.path.join(out, "layer.tar.gz")) as tf:
        assert tf.getnames() == ["f"]


def test_tree_tar_input_keeps_hardlinks_and_symlinks(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "usr").mkdir()
    (src / "usr" / "lib.so.1").write_bytes(b"\x7fELF" + b"\0" * 3000)
    os.link(src / "usr" / "lib.so.1", src / "usr" / "alias.so")
    os.symlink("lib.so.1", src / "usr" / "lib.so")
    tree_tar = tmp_path / "tree.tar"
    subprocess.run(["tar", "-cf", str(tree_tar), "-C", str(src), "usr"], env=tool_env(),
                   check=True)
    out = tmp_path / "out"
    assert layer_cli.main(["--output", str(out), "--tar", str(tree_tar),
                           "--dir", "/usr=%s" % (src / "usr")]) == 0
    with tarfile.open(out / "layer.tar.gz") as tf:
        m = {x.name: x for x in tf}
        assert m["usr/alias.so"].isreg()
        assert tf.extractfile(m["usr/alias.so"]).read() == b"\x7fELF" + b"\0" * 3000
        assert m["usr/lib.so.1"].islnk() and m["usr/lib.so.1"].linkname == "usr/alias.so"
        assert m["usr/lib.so"].issym() and m["usr/lib.so"].linkname == "lib.so.1"


def test_cli_reports_user_errors_on_stderr_with_status_1(tmp_path):
    proc = smith_cmd("layer", "--output", "o", "--dir", "no-equals-sign", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("smith layer: error: --dir 'no-equals-sign': expected "
                                  "IMAGEPATH=HOSTDIR"), proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_file_that_shrinks_while_written_is_an_error(tmp_path) -> None:
    """The writer reads exactly the size it planned (readinto straight into the tar chunk): a
    file cut short in between is an error naming it, not a tar with wrong offsets."""
    from smith.oci import layer, tree
    big = tmp_path / "root" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(3 << 20))
    records = layer.plan(tree.read_dir(str(tmp_path / "root")))
    big.write_bytes(b"short")
    with open(tmp_path / "out.tar.gz", "wb") as out:
        with pytest.raises(SmithError, match="big.bin shrank while the layer was written"):
            layer.write_layer(records, out, 10, 10, 0)
