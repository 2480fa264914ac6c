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
