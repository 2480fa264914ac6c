import os
import subprocess
import sys

import pytest

from smith.atomic import atomic_dir, atomic_dir_files, atomic_file, write_file


def test_write_file_appears_whole_with_its_mode(tmp_path):
    out = tmp_path / "sub" / "out.json"
    write_file(str(out), "ünïcode\n")
    assert out.read_bytes() == "ünïcode\n".encode("utf-8")
    assert out.stat().st_mode & 0o777 == 0o644
    write_file(str(out), b"again", perms=0o600)
    assert out.read_bytes() == b"again" and out.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(out.parent)) == ["out.json"]


def test_perms_none_follows_the_umask_like_open(tmp_path):
    old = os.umask(0o027)
    try:
        write_file(str(tmp_path / "pid"), "42", perms=None, parents=False)
    finally:
        os.umask(old)
    assert (tmp_path / "pid").stat().st_mode & 0o777 == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(str(out)) as f:
            f.write(b"half")
            raise RuntimeError("boom")
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == ["out"]


def test_relative_paths_and_missing_parents(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_file("plain", b"1")
    with pytest.raises(FileNotFoundError):
        write_file("missing/x", b"1", parents=False)
    assert sorted(os.listdir(tmp_path)) == ["plain"]


def test_a_symlink_at_the_temp_name_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    names = iter(["taken", "free"])
    monkeypatch.setattr("smith.atomic._urandom", lambda n: next(names).encode())
    os.symlink(str(victim), str(tmp_path / (".out.%s" % b"taken".hex())))
    write_file(str(tmp_path / "out"), b"new")
    assert victim.read_bytes() == b"precious" and (tmp_path / "out").read_bytes() == b"new"


def test_atomic_dir_replaces_an_old_tree_or_leaves_it(tmp_path):
    out = tmp_path / "layout"
    with atomic_dir(str(out)) as tmp:
        open(os.path.join(tmp, "a"), "w").close()
    with pytest.raises(RuntimeError):
        with atomic_dir(str(out)) as tmp:
            open(os.path.join(tmp, "b"), "w").close()
            raise RuntimeError("boom")
    assert os.listdir(out) == ["a"] and os.listdir(tmp_path) == ["layout"]
    with atomic_dir(str(out)) as tmp:
        open(os.path.join(tmp, "c"), "w").close()
    assert os.listdir(out) == ["c"] and os.listdir(tmp_path) == ["layout"]
    assert out.stat().st_mode & 0o777 == 0o755


def test_atomic_dir_files(tmp_path):
    with atomic_dir_files(str(tmp_path / "d"), ["x", "y"]) as tmp:
        for p in tmp.values():
            open(p, "w").close()
    assert sorted(os.listdir(tmp_path / "d")) == ["x", "y"]


def test_the_runtime_can_use_it_without_importing_os():
    # smith-runtime starts with python3 -I -S and never imports os (runtime/posixos.py).
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds smith/
    code = "import sys; sys.path.insert(0, %r); import smith.atomic; print('os' in sys.modules)" % parent
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], stdout=subprocess.PIPE, check=True)
    assert out.stdout.strip() == b"False"
