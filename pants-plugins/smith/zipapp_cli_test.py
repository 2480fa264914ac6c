"""`smith zipapp`: byte-identical archives from two source paths, and they run."""
import hashlib
import io
import os
import re
import shutil
import subprocess
import zipfile

import pytest

import smith
from smith.runtime import ZIPAPP_ONLY
from smith.zipapp_cli import write_zipapp

SMITH = os.path.dirname(smith.__file__)


def _build(tmp_path, name):
    src = tmp_path / name / "src"
    shutil.copytree(SMITH, src / "smith", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = str(tmp_path / name / "app")
    write_zipapp(str(src), "smith.runtime", out, "/usr/bin/python3",
                 only=list(ZIPAPP_ONLY),
                 precompile="/usr/bin/python3")
    return out


def test_same_bytes_from_different_paths_and_it_runs(tmp_path):
    a, b = _build(tmp_path, "a"), _build(tmp_path, "deeper/b")
    digest = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (a, b)]
    assert digest[0] == digest[1]
    proc = subprocess.run([a, "--version"], stdout=subprocess.PIPE, universal_newlines=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and "smith-runtime" in proc.stdout


def test_the_smith_cli_runs_every_command_on_the_machine_python(tmp_path):
    """dist/smith as //:smith builds it: pure Python (elftools, debian bundled), so every
    command must start on /usr/bin/python3 without compiled modules such as zstandard."""
    from smith.cli import COMMANDS
    src = tmp_path / "src"
    shutil.copytree(SMITH, src / "smith", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    app = str(tmp_path / "smith")
    write_zipapp(str(src), "smith", app, "/usr/bin/python3", bundle=["elftools", "debian"])
    env = {"PATH": "/usr/bin:/bin"}
    for name in sorted(COMMANDS):
        proc = subprocess.run([app, name, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, env=env)
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
    # zstd input without the module is a clear error naming the input, not a traceback.
    no_zstd = ("import sys; sys.modules['zstandard'] = None\n"
               "from smith.packages.compression import decompress\n"
               "decompress(bytes.fromhex('28b52ffd') + bytes(8), 'pkg.deb: data.tar.zst')\n")
    proc = subprocess.run(["/usr/bin/python3", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                           "exec(sys.argv[2])", app, no_zstd],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
    assert "pkg.deb: data.tar.zst is zstd-compressed, which needs the Python module zstandard" \
        in proc.stderr, proc.stderr


_PROBE = '''import sys, zipimport
import fcntl  # found outside the archive, after PathFinder asked the archive's path entry
from pkg import mod
print(type(__loader__).__name__, mod.VALUE,
      any(isinstance(f, zipimport.zipimporter) for f in sys.path_importer_cache.values()))
'''


def _probe_app(tmp_path):
    src = tmp_path / "src" / "pkg"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "__main__.py").write_text(_PROBE)
    (src / "mod.py").write_text("VALUE = 42\n")
    app = str(tmp_path / "app")
    write_zipapp(str(tmp_path / "src"), "pkg", app, "/usr/bin/python3", precompile="/usr/bin/python3")
    return app


def _run(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_boot_serves_the_pyc_index_without_zipimport(tmp_path):
    """zipimport would parse the whole central directory (2.3M instructions for the runtime)."""
    assert _run([_probe_app(tmp_path)]) == ["_Finder", "42", "False"]


def test_boot_falls_back_to_zipimport(tmp_path):
    app = _probe_app(tmp_path)
    with open(app, "rb") as f:
        data = bytearray(f.read())
    line = bytes(data[:data.index(b"\n")]).decode()
    # a damaged entry (its .pyc's magic number): zipimport serves pkg.mod from its .py
    zip_start = int(re.search(r"\.read\((\d+)\)", line).group(1))
    with zipfile.ZipFile(io.BytesIO(bytes(data[zip_start:]))) as z:
        local = zip_start + z.getinfo("pkg/mod.pyc").header_offset
    head = data[local:local + 30]
    data[local + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")] ^= 0xFF
    damaged = str(tmp_path / "damaged")
    with open(damaged, "wb") as f:
        f.write(data)
    os.chmod(damaged, 0o755)
    assert _run([damaged])[1:] == ["42", "True"]


def test_boot_under_another_python_uses_the_sources(tmp_path):
    """Another Python (another magic number) runs the boot line's source fallback: zipimport, .py."""
    other = shutil.which("python3.9", path="/root/.pyenv/versions/3.9.18/bin:/usr/local/bin:/usr/bin")
    if not other:
        pytest.skip("no python3.9 on this machine")
    app = _probe_app(tmp_path)
    with open(app, "rb") as f:
        line = f.readline().decode()
    assert _run([other, "-ISc" + line.split("-ISc", 1)[1].strip(), app])[1:] == ["42", "True"]
