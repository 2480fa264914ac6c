"""smith_minimize(python_sourceless=...): kept modules as sourceless .pyc (`compileall -b` layout).

A kept `D/__pycache__/N.<tag>.pyc` that is unchecked-hash (built by `smith pyc`) is never checked
against its source, yet Python's FileFinder only finds the module where `D/N.py` exists. Written
as `D/N.pyc` instead (same bytes), the module is found by the sourceless loader and the `.py` and
the `__pycache__` copy can go. The image is hostile input: the .pyc is read fd-relative, never
through a symlink; anything but a regular file whose 16-byte header says "this tag's magic,
hash-based, unchecked" is left as it is. Cost: tracebacks through those modules show no source
lines.
"""
import os
import re
import stat
from typing import Dict, Iterable, Optional, Sequence, Set, Tuple

from smith import safe_fs
from smith.elf.rootfs import matches_or_under
from smith.errors import SmithError

# The magic number of each CPython release's bytecode, by cache tag (importlib.util.MAGIC_NUMBER
# of the final releases; checked against 3.6-3.13): only these tags are converted.
MAGIC = {
    "cpython-36": 3379, "cpython-37": 3394, "cpython-38": 3413, "cpython-39": 3425,
    "cpython-310": 3439, "cpython-311": 3495, "cpython-312": 3531, "cpython-313": 3571,
}
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, check_source off
HEADER = 16
MAX_PYC = 64 << 20  # a bigger "bytecode" file is left alone rather than held in memory

# D/__pycache__/N.TAG.pyc (no .opt-N: the sourceless layout has no optimisation levels)
CACHED_PYC = re.compile(r"^(/.*)/__pycache__/([^/.]+)\.([a-z]+-\d+)\.pyc$")


def magic_of(tag: str) -> Optional[bytes]:
    number = MAGIC.get(tag)
    return None if number is None else number.to_bytes(2, "little") + b"\r\n"


def is_unchecked_pyc(data: bytes, tag: str) -> bool:
    """The header of `data` is that of an unchecked-hash .pyc of the interpreter with `tag`."""
    magic = magic_of(tag)
    return (magic is not None and len(data) >= HEADER and data[:4] == magic
            and int.from_bytes(data[4:8], "little") == UNCHECKED_HASH)


def check_globs(globs: Sequence[str]) -> None:
    for g in globs:
        if not g.startswith("/"):
            raise SmithError("python_sourceless glob %r must be absolute inside the image, e.g. "
                             "/usr/lib/python3.11/**" % g)


def _parts(path: str):
    return path.strip("/").split("/")


def _read_regular(fs: safe_fs.Root, path: str) -> Optional[bytes]:
    """The bytes of the regular file `path` of the root, or None: a symlink anywhere on the
    way, anything but a regular file, a missing or oversized file."""
    try:
        fd = fs.open_file(_parts(path))
    except (safe_fs.Unsafe, OSError):
        return None
    try:
        if os.fstat(fd).st_size > MAX_PYC:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_PYC + 1)
    finally:
        os.close(fd)


def _kind(fs: safe_fs.Root, path: str) -> Optional[int]:
    """lstat mode of `path` (None: missing); a symlink on the way counts as "something there"."""
    parts = _parts(path)
    try:
        pfd = fs.open_dir(parts[:-1])
    except (safe_fs.Unsafe, OSError):
        return stat.S_IFLNK
    if pfd is None:
        return None
    try:
        return os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    finally:
        os.close(pfd)


def make_sourceless(root: str, kept: Iterable[str], globs: Sequence[str],
                    traced: Iterable[str] = ()) -> Tuple[Set[str], Dict[str, bytes]]:
    """(the kept paths without the converted .py and __pycache__ .pyc, {D/N.pyc: bytes}).

    Converted: a kept `D/__pycache__/N.TAG.pyc` under `globs`, a regular file with an
    unchecked-hash header of TAG's magic, whose kept `D/N.py` is a regular file the workload
    did not open itself (`traced`: a module whose source is read, e.g. by inspect, keeps it),
    when no `D/N.pyc` exists in the image. Everything else is left as it is."""
    out = set(kept)
    opened = set(traced)
    written: Dict[str, bytes] = {}
    emptied: Set[str] = set()
    dropped: Set[str] = set()
    with safe_fs.Root(root) as fs:
        for pyc in sorted(out):
            m = CACHED_PYC.match(pyc)
            if m is None or not matches_or_under(pyc, globs):
                continue
            d, name, tag = m.groups()
            source, dest = "%s/%s.py" % (d, name), "%s/%s.pyc" % (d, name)
            if source not in out or source in opened or dest in out or dest in written:
                continue
            if not stat.S_ISREG(_kind(fs, source) or 0) or _kind(fs, dest) is not None:
                continue
            data = _read_regular(fs, pyc)
            if data is None or not is_unchecked_pyc(data, tag):
                continue
            written[dest] = data
            out.discard(pyc)
            out.discard(source)
            dropped.add(source)
            emptied.add(os.path.dirname(pyc))
        links = [p for p in out if dropped and stat.S_ISLNK(_kind(fs, p) or 0)]
    for cache_dir in emptied:
        if not any(p.startswith(cache_dir + "/") for p in out):
            out.discard(cache_dir)
    return out - _links_to(root, links, dropped), written


def _links_to(root: str, links: Iterable[str], dropped: Set[str]) -> Set[str]:
    """Those of `links` that lead to a dropped source (e.g. Debian's
    _sysconfigdata__linux_x86_64-linux-gnu.py -> _sysconfigdata__x86_64-linux-gnu.py): kept,
    they would dangle. Resolved inside the root only (a link that loops or leaves it stays)."""
    from smith.elf.rootfs import RootFS, _try_resolve
    fs = RootFS(root)
    out = set()
    for link in links:
        found = _try_resolve(fs, link)
        if found is not None and found.path in dropped:
            out.add(link)
    return out
