"""`smith zipapp`: byte-identical archives from two source paths, and they run."""
import hashlib
import os
import shutil
import subprocess

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
