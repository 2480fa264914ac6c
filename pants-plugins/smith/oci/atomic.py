"""Outputs appear whole or not at all: write under temporary names, rename at the end."""
import contextlib
import os
import tempfile
from typing import Dict, Iterator, List

from smith.safe_fs import remove_tree


@contextlib.contextmanager
def atomic_dir_files(out_dir: str, names: List[str]) -> Iterator[Dict[str, str]]:
    """Yields {name: temp path} in `out_dir`; on success renames each to its name, on failure
    removes the temp files."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = {n: os.path.join(out_dir, ".%s.tmp-%d" % (n, os.getpid())) for n in names}
    try:
        yield tmp
        for n in names:
            os.replace(tmp[n], os.path.join(out_dir, n))
    finally:
        for p in tmp.values():
            if os.path.exists(p):
                os.unlink(p)


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "wb") -> Iterator:
    """An open file at a temp name next to `path`, renamed to `path` on success."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str) -> Iterator[str]:
    """A fresh temp directory next to `path`, moved to `path` on success (replacing an old one)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(path)) + ".", dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if os.path.lexists(path):
            old = tmp + ".old"
            os.rename(path, old)
            os.rename(tmp, path)
            remove_tree(old)
        else:
            os.rename(tmp, path)
    finally:
        if os.path.lexists(tmp):
            remove_tree(tmp)  # iterative and fd-based: the tree may be hostile and deep
