import os
import posixpath
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from smith.runtime import posixos

PLUGINS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Paths made of the parts that matter to these functions: slashes, dots, names.
paths = st.lists(st.sampled_from(["/", "//", "///", ".", "..", "a", "b.c", "..d", "", "é"]),
                 max_size=8).map("".join)


@settings(max_examples=500, deadline=None)
@given(paths, paths, paths)
def test_path_functions_are_posixpaths(a, b, c):
    p = posixos.path
    assert p.join(a, b, c) == posixpath.join(a, b, c)
    assert p.join(a) == posixpath.join(a)
    assert p.dirname(a) == posixpath.dirname(a)
    assert p.basename(a) == posixpath.basename(a)
    assert p.normpath(a) == posixpath.normpath(a)
    assert p.abspath(a) == posixpath.abspath(a)


def test_file_tests_and_realpath(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    os.symlink("d", tmp_path / "link")
    os.symlink("missing", tmp_path / "dangling")
    os.symlink("loop", tmp_path / "loop")
    for name in ("d", "d/f", "link", "link/f", "dangling", "loop", "nothing", "d/f/x", "d\0"):
        path = str(tmp_path / name)
        assert posixos.path.exists(path) == os.path.exists(path), name
        assert posixos.path.isdir(path) == os.path.isdir(path), name
        assert posixos.path.isfile(path) == os.path.isfile(path), name
    for name in ("d", "link", "link/f", "link/../link/."):
        assert posixos.path.realpath(str(tmp_path / name)) == os.path.realpath(tmp_path / name)


def test_makedirs(tmp_path):
    target = str(tmp_path / "a" / "b" / "c")
    posixos.makedirs(target, 0o700)
    assert os.path.isdir(target) and os.stat(target).st_mode & 0o777 == 0o700
    posixos.makedirs(target, 0o700, exist_ok=True)
    try:
        posixos.makedirs(target)
    except FileExistsError:
        pass
    else:
        raise AssertionError("makedirs without exist_ok accepted an existing directory")
    (tmp_path / "file").write_text("")
    try:
        posixos.makedirs(str(tmp_path / "file"), exist_ok=True)
    except FileExistsError:
        pass
    else:
        raise AssertionError("makedirs accepted a file in the way")


def test_fs_codecs_and_environ():
    name = "caf\xe9\udcff"
    assert posixos.fsencode(name) == os.fsencode(name)
    assert posixos.fsdecode(os.fsencode(name)) == name
    code = ("import os, sys; sys.path.insert(0, %r); from smith.runtime import posixos; "
            "print(posixos.environ == dict(os.environ), sorted(posixos.environ), "
            "posixos.getenv('B') == os.getenv('B'), posixos.getenv('C', 'd'))" % PLUGINS)
    env = {"A": "1", "B": "caf\xe9\udcff", "PATH": "/usr/bin"}
    out = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", code], env=env, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert out.startswith("True ") and "'B'" in out  # (+ LC_CTYPE when Python coerces the C locale)
    assert out.split()[-2:] == ["True", "d"]


def test_start_path_does_not_import_os():
    """Every module `run` loads, in the runtime and in the container's init before exec."""
    modules = ["smith.runtime.main", "smith.runtime.commands.run", "smith.runtime.container",
               "smith.runtime.libc", "smith.runtime.init", "smith.runtime.rootfs",
               "smith.runtime.identity", "smith.runtime.state"]
    code = ("import sys; sys.path.insert(0, %r)\n" % PLUGINS
            + "".join("import %s\n" % m for m in modules)
            + "print(sorted(m for m in ('os', 'posixpath', 'stat', '_collections_abc') if m in sys.modules))")
    out = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", code], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_os_name_the_modules_use_is_there():
    """A name missing from posixos would only fail when that line runs (e.g. os._exit, which
    `from posix import *` does not bring)."""
    import glob
    import re
    here = os.path.dirname(os.path.abspath(__file__))
    missing = []
    for f in glob.glob(os.path.join(here, "**", "*.py"), recursive=True):
        with open(f) as src:
            text = src.read()
        if f.endswith("_test.py") or "import posixos as os" not in text:
            continue
        for name in set(re.findall(r"\bos\.([A-Za-z_]+(?:\.[A-Za-z_]+)?)", text)):
            obj = posixos
            for part in name.split("."):
                obj = getattr(obj, part, None)
            if obj is None:
                missing.append("%s: os.%s" % (os.path.relpath(f, here), name))
    assert not missing


def test_read_text(tmp_path):
    big = "é\n" * 70000  # more than one read
    (tmp_path / "f").write_text(big)
    assert posixos.read_text(str(tmp_path / "f")) == big
    with open("/proc/self/mountinfo") as f:
        assert posixos.read_text("/proc/self/mountinfo").splitlines()[0] == f.readline().rstrip("\n")
