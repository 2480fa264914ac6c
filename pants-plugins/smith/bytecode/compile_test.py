"""`smith pyc` against a real interpreter tree: this host's Debian python3.11, cut to its ELF
closure and the stdlib modules the compile needs, as a tree tar (the shape smith_packages gives)."""
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile

import pytest

import smith
from smith.bytecode import compile_cli, interpreter
from smith.elf.closure import compute_closure
from smith.elf.treetar import write_tree_tar
from smith.testutil import hostile_json
from smith.testutil.debian import tool_env

HOST_PYTHON = "/usr/bin/python3.11"
STDLIB = "/usr/lib/python3.11"
SOURCES = {
    # a frozenset constant (marshalled in hash order) and names shared with other modules
    "pkg/__init__.py": b"import os\nNAMES = {'alpha', 'beta', 'gamma', 'delta'}\nzorblax = (1.5, 'x y')\n",
    "pkg/mod.py": b"# -*- coding: latin-1 -*-\ndef f(x):\n    return x in {'a', 'b', 'c'} and os.path\n"
                  b"S = '\xe9t\xe9'\nimport os\n",
    "pkg/more.py": b"import os\nzorblax = (1.5, 'x y')\nclass C:\n    def path(self):\n        return os.path.join('a', 'b')\n",
    "pkg/broken.py": b"def f(:\n",
    "pkg/data.txt": b"not python\n",
    "skip/me.py": b"x = 1\n",
}


def _smith(args, cwd, **env):
    run_env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)), **env)
    return subprocess.run([sys.executable, "-m", "smith", "pyc", *args], env=run_env, cwd=str(cwd),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def python_paths() -> list:
    if not os.path.exists(HOST_PYTHON):
        pytest.skip("needs Debian's %s" % HOST_PYTHON)
    keep = [STDLIB + "/" + m for m in ("*.py", "encodings", "importlib", "json", "collections", "re")]
    return compute_closure("/", [HOST_PYTHON], keep=keep).paths


@pytest.fixture(scope="module")
def python_tree(tmp_path_factory, python_paths) -> str:
    out = str(tmp_path_factory.mktemp("python") / "python.tar")
    write_tree_tar(out, "/", python_paths, {})
    return out


@pytest.fixture
def sources(tmp_path) -> str:
    src = tmp_path / "src"
    for rel, data in SOURCES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    os.symlink("mod.py", str(src / "pkg/alias.py"))  # a link to a .py compiles under its own name
    os.symlink("/etc/passwd", str(src / "pkg/outside.py"))  # leaves the tree: nothing to compile
    return str(src)


def _pycs(tar_path: str) -> dict:
    with tarfile.open(tar_path) as t:
        return {m.name: t.extractfile(m).read() for m in t if m.isfile()}


def _compile(python_tree, sources, cwd, *extra, **env) -> dict:
    os.makedirs(str(cwd), exist_ok=True)
    proc = _smith(["--python-tree", python_tree, "--output", "pyc.tar", "--dir", "/opt/app=" + sources,
                   "--exclude", "/opt/app/skip", *extra], cwd, **env)
    assert proc.returncode == 0, proc.stderr
    return _pycs(os.path.join(str(cwd), "pyc.tar"))


def test_pyc_are_unchecked_hash_named_for_the_image_and_load_without_compiling(python_tree, sources, tmp_path):
    pycs = _compile(python_tree, sources, tmp_path / "a")
    tag = "cpython-311"
    assert sorted(pycs) == ["opt/app/pkg/__pycache__/%s.%s.pyc" % (n, tag)
                            for n in ("__init__", "alias", "mod", "more")]
    mod = pycs["opt/app/pkg/__pycache__/mod.%s.pyc" % tag]
    check = ("import importlib.util, marshal, sys; d = sys.stdin.buffer.read(); "
             "assert d[:4] == importlib.util.MAGIC_NUMBER; "
             "assert int.from_bytes(d[4:8], 'little') == 1, 'hash-based, unchecked'; "
             "assert d[8:16] == importlib.util.source_hash(open(sys.argv[1], 'rb').read()); "
             "print(marshal.loads(d[16:]).co_filename)")
    out = subprocess.run([HOST_PYTHON, "-c", check, os.path.join(sources, "pkg/mod.py")], input=mod,
                         stdout=subprocess.PIPE, check=True).stdout
    assert out.decode().strip() == "/opt/app/pkg/mod.py"
    # Import from a tree holding the sources and these .pyc: nothing is compiled (python -v
    # names the .pyc it loads the code from), even with the source newer than the .pyc.
    root = tmp_path / "root"
    for rel, data in pycs.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel in ("pkg/__init__.py", "pkg/mod.py"):
        (root / "opt/app" / rel).write_bytes(SOURCES[rel])
    proc = subprocess.run([HOST_PYTHON, "-v", "-B", "-c", "import pkg.mod"], cwd=str(root / "opt/app"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
    loaded = "code object from '%s'" % (root / "opt/app/pkg/__pycache__/mod.cpython-311.pyc")
    assert loaded in proc.stderr, proc.stderr


def test_a_module_that_does_not_compile_is_named_and_skipped(python_tree, sources, tmp_path):
    proc = _smith(["--python-tree", python_tree, "--output", "pyc.tar", "--dir", "/opt/app=" + sources],
                  tmp_path)
    assert proc.returncode == 0
    assert "warning: /opt/app/pkg/broken.py does not compile" in proc.stderr
    assert "opt/app/skip/__pycache__/me.cpython-311.pyc" in _pycs(str(tmp_path / "pyc.tar"))


def test_same_sources_same_bytes_whatever_the_path_seed_or_company(python_tree, sources, tmp_path):
    """Reproducible: another checkout path, another PYTHONHASHSEED outside, and each file
    compiled alone (marshal's FLAG_REF depends on reference counts, which other modules
    compiled in the same process could change) give byte-identical .pyc."""
    a = _compile(python_tree, sources, tmp_path / "a", PYTHONHASHSEED="1")
    moved = str(tmp_path / "a-much-longer-checkout-path" / "src")
    shutil.copytree(sources, moved, symlinks=True)
    b = _compile(python_tree, moved, tmp_path / "b", PYTHONHASHSEED="4242")
    assert a == b
    names = ("__init__", "mod", "more")
    for name in names:
        others = [arg for n in ("alias", *names) if n != name for arg in ("--exclude", "/opt/app/pkg/%s.py" % n)]
        alone = _compile(python_tree, sources, tmp_path / name, *others)
        key = "opt/app/pkg/__pycache__/%s.cpython-311.pyc" % name
        assert list(alone) == [key]
        assert alone[key] == a[key]


def test_a_shipped_pyc_is_kept(python_tree, sources, tmp_path):
    shipped = tmp_path / "src/pkg/__pycache__/more.cpython-311.pyc"
    shipped.parent.mkdir()
    shipped.write_bytes(b"theirs")
    pycs = _compile(python_tree, sources, tmp_path / "a")
    assert "opt/app/pkg/__pycache__/more.cpython-311.pyc" not in pycs
    assert "opt/app/pkg/__pycache__/mod.cpython-311.pyc" in pycs


def _tar(path, members):
    with tarfile.open(str(path), "w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            t.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.mark.parametrize("members, python, message", [
    ({"usr/lib/x.py": b""}, None, "the interpreter tree has no /usr/bin/python3.N; give the interpreter with --python"),
    ({"usr/bin/python3.11": b"#!/nowhere\n"}, None, "interpreter of /usr/bin/python3.11: /nowhere does not exist"),
    ({"usr/bin/python3": b"\x7fELF junk"}, None, "/usr/bin/python3"),
    ({"usr/bin/python3.11": b"", "usr/bin/python3.12": b""}, None, "several (python3.11, python3.12)"),
    ({"usr/bin/python3": b""}, "/usr/bin/python9", "--python /usr/bin/python9 is not in the interpreter tree"),
    ({"../evil.py": b""}, None, "../evil.py"),
])
def test_a_bad_interpreter_tree_is_a_clear_error_and_writes_nothing(sources, tmp_path, members, python, message):
    tree = _tar(tmp_path / "bad.tar", members)
    work = tmp_path / "work"
    work.mkdir()
    proc = _smith(["--python-tree", tree, "--output", "pyc.tar", "--dir", "/opt/app=" + sources,
                   *(["--python", python] if python else [])], work)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("smith pyc: error: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.listdir(str(work)) == []  # no output, no temp dir left


JSON_INIT = STDLIB + "/json/__init__.py"


def _hostile_tree(python_paths, tmp_path, dump_body: str) -> str:
    """The interpreter tree with a stdlib whose json.dump (the worker's report) runs `dump_body`."""
    with open(JSON_INIT) as f:
        hostile = f.read() + "\n\ndef dump(obj, fp, **kw):\n    import sys\n    %s\n" % dump_body
    cached = STDLIB + "/json/__pycache__/__init__.cpython-311.pyc"  # would shadow the hostile source
    tree = str(tmp_path / "python.tar")
    write_tree_tar(tree, "/", [p for p in python_paths if p != cached], {JSON_INIT: hostile.encode()})
    return tree


@pytest.mark.parametrize("printed, message", [
    ("'[\"cpython-311\"]'", "expected a JSON object, found array"),
    ("'{\"cache_tag\": \"cpython-311\", \"failed\": 5}'", "the field 'failed' must be a JSON array, not integer"),
    ("'{\"cache_tag\": \"cpython-311\", \"failed\": [[\"/x.py\"]]}'", "'failed' must hold [path, error] pairs"),
    ("'[' * 5000 + ']' * 5000", hostile_json.DEEP_MESSAGE),
    ("'Python 2.7.18'", hostile_json.NOT_JSON_MESSAGE),
], ids=["top-level-array", "failed-an-int", "failed-a-single", "deep", "not-json"])
def test_a_hostile_interpreter_report_is_a_clear_error_and_writes_nothing(python_paths, sources, tmp_path,
                                                                        printed, message):
    """The interpreter and its stdlib come with the image: here its json.dump prints what it likes."""
    tree = _hostile_tree(python_paths, tmp_path, "fp.write(%s)" % printed)
    work = tmp_path / "work"
    work.mkdir()
    proc = _smith(["--python-tree", tree, "--output", "pyc.tar", "--dir", "/opt/app=" + sources], work)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("smith pyc: error: the compile report of the image's interpreter "
                                  "/usr/bin/python3.11: "), proc.stderr
    assert message in proc.stderr and "is it CPython 3?" in proc.stderr and "Traceback" not in proc.stderr
    assert os.listdir(str(work)) == []  # no output, no temp dir left


def _address_space_cap():
    # Before the cap, smith read all the interpreter printed: without this bound the old code
    # would take the host's memory; with it, it dies of MemoryError (a traceback) instead.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("dump_body, message", [
    ("while True: fp.write('x' * 65536)",
     "printed more than %d bytes on stdout; is it CPython 3?" % compile_cli.MAX_REPORT_BYTES),
    ("while True: sys.stderr.write('w' * 65536)",
     "printed more than %d bytes on stderr; is it CPython 3?" % interpreter.MAX_STDERR_BYTES),
], ids=["stdout", "stderr"])
def test_an_interpreter_that_prints_without_end_is_stopped_at_the_cap(python_paths, sources, tmp_path,
                                                                      dump_body, message):
    tree = _hostile_tree(python_paths, tmp_path, dump_body)
    work = tmp_path / "work"
    work.mkdir()
    run_env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    proc = subprocess.run([sys.executable, "-m", "smith", "pyc", "--python-tree", tree, "--output", "pyc.tar",
                           "--dir", "/opt/app=" + sources], env=run_env, cwd=str(work), timeout=300,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=_address_space_cap)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr == "smith pyc: error: the image's interpreter /usr/bin/python3.11: %s\n" % message
    assert os.listdir(str(work)) == []


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m"  # OSC (window title), CSI (clear), C1 CSI
SHOWN = "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m"


def test_what_the_interpreter_reports_is_printed_with_control_characters_escaped(python_paths, sources, tmp_path):
    """Terminal escapes in a reported path or error (the report is the image's interpreter's)."""
    report = {"cache_tag": "cpython-311", "failed": [["/opt/app/" + ESCAPES + ".py", "SyntaxError: " + ESCAPES]]}
    tree = _hostile_tree(python_paths, tmp_path, "fp.write(%r)" % json.dumps(report))
    proc = _smith(["--python-tree", tree, "--output", "pyc.tar", "--dir", "/opt/app=" + sources], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not any(c in proc.stderr for c in "\x1b\x07\x9b")
    assert ("smith pyc: warning: /opt/app/%s.py does not compile, so it gets no .pyc (SyntaxError: %s)\n"
            % (SHOWN, SHOWN)) in proc.stderr


def test_the_interpreter_failing_is_shown_with_control_characters_escaped(python_paths, sources, tmp_path):
    tree = _hostile_tree(python_paths, tmp_path, "sys.stderr.write('boom %s\\n'); sys.exit(3)" % ESCAPES.encode(
        "unicode_escape").decode())
    work = tmp_path / "work"
    work.mkdir()
    proc = _smith(["--python-tree", tree, "--output", "pyc.tar", "--dir", "/opt/app=" + sources], work)
    assert proc.returncode == 1
    assert proc.stderr == ("smith pyc: error: the image's interpreter /usr/bin/python3.11: exited with "
                           "status 3: boom %s\n" % SHOWN), proc.stderr
    assert os.listdir(str(work)) == []
