"""Tree tars: a hostile root tar cannot write outside its temp dir; closure tars are byte-stable."""
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

import smith

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
    ([("../x", "file", b"x")], r"entry '../x' refused: .* contains '..'"),
    ([("/etc/x", "file", b"x")], r"entry '/etc/x' refused: .* is an absolute path"),
    ([("lib", "sym", "{outside}"), ("lib/evil", "file", b"x")],
     r"entry 'lib/evil' refused: /lib is a symlink or not a directory"),
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


# What `smith closure --root-tar` does with a tree tar, run by a given interpreter: the zipapps
# run on Debian's /usr/bin/python3 (3.11.2: no tarfile extraction filters), Pants on 3.9.
_ATTACK = r"""
import io, json, os, sys, tarfile
sys.path.insert(0, sys.argv[1])
work = sys.argv[2]
from smith.elf.treetar import unpack_root_tar
from smith.errors import SmithError

def member(name, type_, linkname="", mode=0o644, uid=0, data=None):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.uid, ti.gid = type_, linkname, mode, uid, uid
    ti.size = len(data) if data is not None else 0
    return ti, (io.BytesIO(data) if data is not None else None)

out = {}
for case in ("overwrite", "chmod"):
    host = os.path.join(work, case + "-host-file")
    with open(host, "w") as f:
        f.write("host secret\n")
    os.chmod(host, 0o600)
    if case == "overwrite":  # a symlink x -> host file, then a regular file x
        members = [member("x", tarfile.SYMTYPE, host), member("x", tarfile.REGTYPE, data=b"pwned\n")]
    else:  # a symlink to the host file, then a hardlink to that symlink: mode 6777, uid 4242
        members = [member("x", tarfile.SYMTYPE, host),
                   member("y", tarfile.LNKTYPE, "x", mode=0o6777, uid=4242)]
    tar_path = os.path.join(work, case + ".tar")
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as t:
        for ti, f in members:
            t.addfile(ti, f)
    scratch = os.path.join(work, case + "-scratch")
    os.mkdir(scratch)
    try:
        root = unpack_root_tar(tar_path, scratch)
        result = sorted(os.listdir(root))
    except SmithError as e:
        result = "error: %s" % e
    st = os.stat(host)
    out[case] = {"result": result, "content": open(host).read(),
                 "mode": st.st_mode & 0o7777, "uid": st.st_uid}
print(json.dumps(out))
"""


def _interpreters():
    found = [("pants", sys.executable)]
    if os.path.exists("/usr/bin/python3"):
        found.append(("debian", "/usr/bin/python3"))
    return found


@pytest.mark.parametrize("name,python", _interpreters(), ids=[n for n, _ in _interpreters()])
def test_root_tar_never_writes_chmods_or_chowns_a_host_file(tmp_path, name, python) -> None:
    """The HIGH bug of issue 15: with no extraction filters (Debian's 3.11.2) a symlink then a
    file of the same name overwrote the host file, and a hardlink to a symlink chmodded and
    chowned it (on 3.9.18 too)."""
    src = os.path.dirname(os.path.dirname(os.path.abspath(smith.__file__)))
    proc = subprocess.run([python, "-I", "-c", _ATTACK, src, str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for case in ("overwrite", "chmod"):
        assert got[case]["content"] == "host secret\n", (case, got)
        assert got[case]["mode"] == 0o600, (case, got)
        assert got[case]["uid"] == os.getuid(), (case, got)
    # The later file replaces the symlink inside the root; the hardlink links the symlink itself.
    assert got["overwrite"]["result"] == ["x"]
    assert got["chmod"]["result"] == ["x", "y"]
