"""python_sourceless: unchecked-hash __pycache__ .pyc become sourceless .pyc that the interpreter
really imports; every other .pyc, a symlinked one (even pointing at a valid .pyc outside the
root), a traced source and an existing D/N.pyc are left alone."""
import importlib.util
import os
import py_compile
import subprocess
import sys

import pytest

from smith.errors import SmithError
from smith.oci import sourceless

TAG = sys.implementation.cache_tag
UNCHECKED = py_compile.PycInvalidationMode.UNCHECKED_HASH
LIB = "/usr/lib/py"


def _module(root, rel, body, mode=UNCHECKED, tag=TAG):
    """root/LIB/rel.py and its __pycache__ .pyc (compiled by this interpreter); image paths."""
    src = os.path.join(root, LIB.strip("/"), rel + ".py")
    os.makedirs(os.path.dirname(src), exist_ok=True)
    with open(src, "w") as f:
        f.write(body)
    d, name = os.path.split(src)
    pyc = os.path.join(d, "__pycache__", "%s.%s.pyc" % (name[:-3], tag))
    py_compile.compile(src, cfile=pyc, invalidation_mode=mode, doraise=True)
    image = lambda p: "/" + os.path.relpath(p, root)  # noqa: E731
    return image(src), image(pyc)


def _all(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add("/" + os.path.relpath(os.path.join(d, n), root))
    return out


def _materialise(root, kept, written, dest):
    """What the tree tar would hold, as a directory."""
    for p in sorted(kept):
        host = os.path.join(root, p.lstrip("/"))
        out = os.path.join(dest, p.lstrip("/"))
        if os.path.isdir(host):
            os.makedirs(out, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(host, "rb") as f, open(out, "wb") as g:
                g.write(f.read())
    for p, data in written.items():
        with open(os.path.join(dest, p.lstrip("/")), "wb") as g:
            g.write(data)


@pytest.fixture
def root(tmp_path):
    r = str(tmp_path / "root")
    os.makedirs(r)
    return r


@pytest.mark.skipif(TAG not in sourceless.MAGIC, reason="an interpreter this table does not know")
def test_unchecked_modules_and_packages_become_sourceless_and_import(root, tmp_path):
    mod_py, mod_pyc = _module(root, "mod", "X = 'from mod'\n")
    init_py, init_pyc = _module(root, "pkg/__init__", "Y = 'from pkg'\n")
    kept = _all(root)
    out, written = sourceless.make_sourceless(root, kept, [LIB + "/**"])
    assert sorted(written) == [LIB + "/mod.pyc", LIB + "/pkg/__init__.pyc"]
    assert written[LIB + "/mod.pyc"] == open(root + mod_pyc, "rb").read()  # the same bytes
    for gone in (mod_py, mod_pyc, init_py, init_pyc, LIB + "/__pycache__", LIB + "/pkg/__pycache__"):
        assert gone not in out
    assert LIB + "/pkg" in out
    tree = str(tmp_path / "tree")
    _materialise(root, out, written, tree)
    code = ("import sys; sys.path.insert(0, %r); import mod, pkg; "
            "print(mod.X, pkg.Y, type(mod.__loader__).__name__, type(pkg.__loader__).__name__)"
            % (tree + LIB))
    got = subprocess.run([sys.executable, "-S", "-E", "-B", "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert got.stdout.split() == ["from", "mod", "from", "pkg", "SourcelessFileLoader",
                                  "SourcelessFileLoader"], got.stderr


@pytest.mark.parametrize("mode", [py_compile.PycInvalidationMode.TIMESTAMP,
                                  py_compile.PycInvalidationMode.CHECKED_HASH])
def test_timestamp_and_checked_hash_pyc_are_left_alone(root, mode):
    _module(root, "mod", "X = 1\n", mode=mode)
    kept = _all(root)
    assert sourceless.make_sourceless(root, kept, ["/"]) == (kept, {})


def test_another_interpreters_magic_is_left_alone(root):
    other = "cpython-310" if TAG != "cpython-310" else "cpython-311"
    _, pyc = _module(root, "mod", "X = 1\n")
    os.rename(root + pyc, root + pyc.replace(TAG, other))  # unchecked-hash, but not other's magic
    kept = _all(root)
    assert sourceless.make_sourceless(root, kept, ["/"]) == (kept, {})


def test_unknown_tags_short_files_and_opt_levels_are_left_alone(root):
    _, pyc = _module(root, "mod", "X = 1\n")
    data = open(root + pyc, "rb").read()
    os.rename(root + pyc, root + pyc.replace(TAG, "pypy39-73"))
    d = os.path.dirname(root + pyc)
    _module(root, "short", "X = 1\n")
    with open(os.path.join(d, "short.%s.pyc" % TAG), "wb") as f:
        f.write(data[:12])
    _module(root, "opt", "X = 1\n")
    os.rename(os.path.join(d, "opt.%s.pyc" % TAG), os.path.join(d, "opt.%s.opt-1.pyc" % TAG))
    kept = _all(root)
    assert sourceless.make_sourceless(root, kept, ["/"]) == (kept, {})


def test_symlinked_pyc_even_to_a_valid_one_outside_the_root_is_left_alone(root, tmp_path):
    outside_py, outside_pyc = _module(str(tmp_path / "elsewhere"), "good", "X = 1\n")
    _, pyc = _module(root, "mod", "X = 1\n")
    os.unlink(root + pyc)
    os.symlink(str(tmp_path / "elsewhere") + outside_pyc, root + pyc)  # absolute, out of the tree
    _, pyc2 = _module(root, "rel", "X = 1\n")
    os.unlink(root + pyc2)
    os.symlink("../../../../../elsewhere" + outside_pyc, root + pyc2)
    kept = _all(root)
    assert sourceless.make_sourceless(root, kept, ["/"]) == (kept, {})


def test_a_symlinked_directory_on_the_way_is_not_followed(root, tmp_path):
    outside = str(tmp_path / "elsewhere")
    _module(outside, "mod", "X = 1\n")
    os.makedirs(root + "/usr/lib")
    os.symlink(outside + LIB, root + LIB)  # /usr/lib/py -> a host directory
    kept = {LIB + "/mod.py", LIB + "/__pycache__/mod.%s.pyc" % TAG}
    assert sourceless.make_sourceless(root, kept, ["/"]) == (kept, {})


def test_traced_sources_existing_pyc_unkept_sources_and_other_paths_are_left_alone(root):
    traced_py, _ = _module(root, "traced", "X = 1\n")
    _module(root, "clash", "X = 1\n")
    with open(root + LIB + "/clash.pyc", "wb") as f:
        f.write(b"not ours")
    _, lone_pyc = _module(root, "lone", "X = 1\n")
    _module(root, "app/main", "X = 1\n")
    kept = _all(root) - {LIB + "/lone.py"}
    out, written = sourceless.make_sourceless(root, kept, [LIB + "/[!a]*"], traced=[traced_py])
    assert written == {} and out == kept


def test_globs_must_be_absolute():
    with pytest.raises(SmithError, match="must be absolute inside the image"):
        sourceless.check_globs(["usr/lib/python3.11/**"])


def test_the_magic_table_agrees_with_this_interpreter():
    if TAG in sourceless.MAGIC:
        assert sourceless.magic_of(TAG) == importlib.util.MAGIC_NUMBER


def test_links_to_a_dropped_source_go_too_other_links_stay(root):
    src, _ = _module(root, "_sysconfigdata__x86_64-linux-gnu", "X = 1\n")
    d = root + LIB
    os.symlink("_sysconfigdata__x86_64-linux-gnu.py", d + "/_sysconfigdata__linux_x86_64-linux-gnu.py")
    with open(d + "/other.py", "w") as f:
        f.write("Y = 1\n")
    os.symlink("other.py", d + "/alias.py")
    os.symlink("/nowhere/else.py", d + "/dangling.py")
    kept = _all(root)
    out, written = sourceless.make_sourceless(root, kept, [LIB])
    assert sorted(written) == [LIB + "/_sysconfigdata__x86_64-linux-gnu.pyc"]
    assert sorted(kept - out) == sorted([src, LIB + "/_sysconfigdata__linux_x86_64-linux-gnu.py",
                                         LIB + "/__pycache__",
                                         LIB + "/__pycache__/_sysconfigdata__x86_64-linux-gnu.%s.pyc" % TAG])
