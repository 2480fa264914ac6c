"""Run a root's own Python interpreter on this host: through the root's ld.so and libraries.

The image's interpreter decides the bytecode (magic number, cache tag, code object layout), so
it is the one that compiles. It is started by the root's dynamic loader with
`--library-path` set to the directories where smith's ELF closure found its libraries and
`--inhibit-cache` (the host's ld.so.cache must not pick host libraries); `--argv0` gives Python
its real path, from which it finds its own standard library inside the root.
"""
import os
import re
import selectors
import signal
import subprocess
import time
from typing import Dict, List, Optional, Tuple

from smith.elf.closure import compute_closure
from smith.elf.rootfs import RootFS
from smith.errors import SmithError
from smith.text import printable

_VERSIONED = re.compile(r"python3\.[0-9]+$")
# The env the interpreter runs with: nothing of the host's, and a fixed hash seed (frozenset
# constants are marshalled in hash order).
ENV = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
# Warnings (e.g. an invalid escape in a string) go to stderr, one short line per occurrence.
MAX_STDERR_BYTES = 4 << 20
_CHUNK = 1 << 16


def find_python(root: str, given: Optional[str]) -> str:
    """The interpreter's path inside the root: `given`, else /usr/bin/python3, else the one
    /usr/bin/python3.N."""
    fs = RootFS(root)
    if given:
        if fs.resolve(given) is None:
            raise SmithError("--python %s is not in the interpreter tree; give the path of the "
                             "image's python inside it" % given)
        return given
    if fs.resolve("/usr/bin/python3") is not None:
        return "/usr/bin/python3"
    bindir = fs.resolve("/usr/bin")
    names = sorted(n for n in (os.listdir(fs.host(bindir.path)) if bindir and bindir.is_dir else [])
                   if _VERSIONED.match(n))
    if len(names) != 1:
        raise SmithError("the interpreter tree has %s /usr/bin/python3.N; give the interpreter "
                         "with --python" % ("no" if not names else "several (%s)" % ", ".join(names)))
    return "/usr/bin/" + names[0]


def command(root: str, python: str, args: List[str]) -> List[str]:
    """argv that runs `python args...` of `root` with the root's loader and libraries."""
    result = compute_closure(root, [python])
    fs = RootFS(root)
    main = fs.resolve(python)
    assert main is not None  # the closure found it
    procs = [p for p in result.processes if p.main.found.path == main.path]
    if not procs or len(procs[0].objects) < 2 or not procs[0].main.info.interp:
        raise SmithError("%s is not a dynamically linked ELF program; give the interpreter's "
                         "executable with --python" % python)
    proc = procs[0]
    loader = fs.resolve(proc.main.info.interp)
    assert loader is not None  # the closure checked it
    lib_dirs: List[str] = []
    for obj in proc.objects[1:]:
        d = fs.host(os.path.dirname(obj.found.path))
        if d not in lib_dirs:
            lib_dirs.append(d)
    return [fs.host(loader.path), "--inhibit-cache", "--library-path", ":".join(lib_dirs),
            "--argv0", fs.host(main.path), fs.host(main.path), *args]


def run(argv: List[str], what: str, timeout: int, max_stdout: int) -> str:
    """Run the interpreter; its stdout, or a SmithError naming what went wrong. It is foreign code
    (it comes with the image): what it prints is bounded (stdout by the caller, stderr by
    MAX_STDERR_BYTES) and it is killed past a bound or the timeout."""
    try:
        proc = subprocess.Popen(argv, env=dict(ENV), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd="/", start_new_session=True)
    except OSError as e:
        raise SmithError("%s: cannot start it (%s); an interpreter of another architecture "
                         "needs qemu-user registered with binfmt_misc" % (what, e.strerror))
    try:
        out, err = _read_bounded(proc, what, timeout, max_stdout)
    finally:
        if proc.returncode is None:  # not reaped yet, so its process group is still its own
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # with anything it started
            except ProcessLookupError:
                pass
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise SmithError("%s: exited with status %d: %s"
                         % (what, proc.returncode, printable(" | ".join(tail), 1000)))
    return out.decode("utf-8", "replace")


def _read_bounded(proc: subprocess.Popen, what: str, timeout: int, max_stdout: int) -> Tuple[bytes, bytes]:
    """(stdout, stderr) of `proc` read to their ends, each within its cap, before the deadline."""
    deadline = time.monotonic() + timeout
    caps = {proc.stdout: ("stdout", max_stdout), proc.stderr: ("stderr", MAX_STDERR_BYTES)}
    got: Dict[object, bytearray] = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    with selectors.DefaultSelector() as sel:
        for f in caps:
            sel.register(f, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise SmithError("%s: did not finish within %d s" % (what, timeout))
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = got[key.fileobj]
                buf += chunk
                name, cap = caps[key.fileobj]
                if len(buf) > cap:
                    raise SmithError("%s: printed more than %d bytes on %s; is it CPython 3?"
                                     % (what, cap, name))
    left = deadline - time.monotonic()
    try:
        proc.wait(max(left, 0))
    except subprocess.TimeoutExpired:
        raise SmithError("%s: did not finish within %d s" % (what, timeout)) from None
    return bytes(got[proc.stdout]), bytes(got[proc.stderr])
