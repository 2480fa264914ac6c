"""Tree tars: merged-/usr moves and link rewrites, determinism, and overlap checks."""
import os
import tarfile

import pytest

from smith.errors import SmithError
from smith.packages.entries import Entry
from smith.packages.tree import check_overlaps, merge_usr, write_tar


def entries(*items):
    return [Entry(*item) for item in items]


def test_merge_usr_and_deterministic_tar(tmp_path):
    shipped = entries(("sbin/tool", "symlink", 0o777, b"", "../bin/real"),
                      ("bin/real", "file", 0o4755, b"elf"),
                      ("bin/up", "symlink", 0o777, b"", "../usr/lib/thing"),
                      ("lib64/ld.so", "symlink", 0o777, b"", "/lib/x86_64-linux-gnu/ld.so"),
                      ("bin", "symlink", 0o777, b"", "usr/bin"))   # rpm filesystem style
    tree = merge_usr(reversed(shipped), "pkg")
    by_path = {e.path: e for e in tree}
    assert [e.path for e in tree] == sorted(by_path)
    assert by_path["bin"].target == "usr/bin" and by_path["sbin"].target == "usr/sbin"
    assert by_path["lib64"].target == "usr/lib64" and "lib" not in by_path
    assert by_path["usr/sbin/tool"].target == "../bin/real"      # still right after the move
    assert by_path["usr/bin/up"].target == "../lib/thing"        # rewritten: /usr/lib/thing
    assert by_path["usr"].kind == "dir" and by_path["usr"].mode == 0o755
    for name in ("a.tar", "b.tar"):
        write_tar(str(tmp_path / name), tree if name == "a.tar" else list(reversed(tree)))
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as t:
        real = t.getmember("usr/bin/real")
        assert (real.mode, real.mtime, real.uid, real.uname) == (0o4755, 0, 0, "")
    # The rewritten link resolves once the tree is unpacked.
    root = tmp_path / "root"
    with tarfile.open(tmp_path / "a.tar") as t:
        t.extractall(root)
    assert (root / "sbin/tool").resolve() == (root / "usr/bin/real").resolve()


def test_merge_usr_refuses_clashes_and_escapes():
    with pytest.raises(SmithError, match="ships both /bin/x and /usr/bin/x"):
        merge_usr(entries(("bin/x", "file", 0o755, b"1"), ("usr/bin/x", "file", 0o755, b"2")), "pkg")
    same = merge_usr(entries(("bin/x", "file", 0o755, b"1"), ("usr/bin/x", "file", 0o755, b"1")), "p")
    assert [e.path for e in same] == ["bin", "usr", "usr/bin", "usr/bin/x"]
    with pytest.raises(SmithError, match="unsafe"):
        merge_usr(entries(("usr/../../etc/passwd", "file", 0o644, b"")), "pkg")


def test_check_overlaps(tmp_path):
    def tree(name, content):
        write_tar(str(tmp_path / name), merge_usr(entries(("etc/conf", "file", 0o644, content),
                                                          ("bin/x", "file", 0o755, b"x")), name))
        return str(tmp_path / name)
    check_overlaps({"a": tree("a", b"same"), "b": tree("b", b"same")})
    with pytest.raises(SmithError, match="packages a and c both ship /etc/conf"):
        check_overlaps({"a": tree("a", b"same"), "c": tree("c", b"other")})
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]
