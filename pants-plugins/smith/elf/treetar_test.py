"""Tree tars: a hostile root tar cannot write outside its temp dir; closure tars are byte-stable."""
import io
import os
import tarfile

import pytest

from smith.elf.treetar import unpack_root_tar, write_tree_tar
from smith.errors import SmithError


def _tar(path: str, entries) -> None:
    with tarfile.open(path, "w") as t:
        for name, kind, value in entries:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(value)
                t.addfile(ti, io.BytesIO(value))
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, value
                t.addfile(ti)
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
                t.addfile(ti)


@pytest.mark.parametrize("entries,message", [
    ([("../x", "file", b"x")], "unsafe name '../x'"),
    ([("/etc/x", "file", b"x")], "unsafe name '/etc/x'"),
    ([("lib", "sym", "{outside}"), ("lib/evil", "file", b"x")], "through a symlink out of the root"),
])
def test_hostile_root_tars_are_refused(tmp_path, entries, message) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    entries = [(n, k, v.replace("{outside}", str(outside)) if isinstance(v, str) else v) for n, k, v in entries]
    tar_path = str(tmp_path / "t.tar")
    _tar(tar_path, entries)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SmithError, match=message):
        unpack_root_tar(tar_path, str(work))
    assert os.listdir(str(work)) == [] and os.listdir(str(outside)) == []


def test_root_tar_keeps_absolute_symlinks_and_skips_devices(tmp_path) -> None:
    tar_path = str(tmp_path / "t.tar")
    _tar(tar_path, [("usr", "dir", None), ("usr/lib", "dir", None), ("usr/lib/libx.so.1", "file", b"elf"),
                    ("lib", "sym", "usr/lib"), ("lib64", "sym", "/usr/lib"), ("dev", "dir", None),
                    ("dev/null", "chr", None)])
    root = unpack_root_tar(tar_path, str(tmp_path))
    assert os.readlink(root + "/lib64") == "/usr/lib"
    assert open(root + "/lib/libx.so.1", "rb").read() == b"elf"
    assert os.listdir(root + "/dev") == []


def test_closure_tar_is_deterministic_and_normalised(tmp_path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/prog").write_bytes(b"\x7fELF...")
    os.chmod(str(root / "usr/bin/prog"), 0o750)
    os.symlink("usr/bin", str(root / "bin"))
    outs = []
    for i, umask in enumerate((0o022, 0o077)):
        old = os.umask(umask)
        try:
            out = str(tmp_path / ("out%d.tar" % i))
            os.utime(str(root / "usr/bin/prog"), (1000 + i, 1000 + i))
            write_tree_tar(out, str(root), ["/bin", "/usr/bin/prog"], {"/etc/passwd": b"root:x:0:0::/:/x\n"})
            outs.append(open(out, "rb").read())
        finally:
            os.umask(old)
    assert outs[0] == outs[1]
    with tarfile.open(str(tmp_path / "out0.tar")) as t:
        got = [(m.name, m.type, oct(m.mode), m.mtime, m.uid, m.gid, m.uname, m.gname) for m in t.getmembers()]
    assert got == [
        ("bin", tarfile.SYMTYPE, "0o777", 0, 0, 0, "", ""),
        ("etc", tarfile.DIRTYPE, "0o755", 0, 0, 0, "", ""),
        ("etc/passwd", tarfile.REGTYPE, "0o644", 0, 0, 0, "", ""),
        ("usr", tarfile.DIRTYPE, oct(os.stat(str(root / "usr")).st_mode & 0o7777), 0, 0, 0, "", ""),
        ("usr/bin", tarfile.DIRTYPE, oct(os.stat(str(root / "usr/bin")).st_mode & 0o7777), 0, 0, 0, "", ""),
        ("usr/bin/prog", tarfile.REGTYPE, "0o750", 0, 0, 0, "", ""),
    ]
    assert sorted(os.listdir(str(tmp_path))) == ["out0.tar", "out1.tar", "root"]  # no temp files left
