"""Which files of an image a workload uses: record them with fanotify, then keep them.

Recording (`Recorder`, run by `smith trace` around a `smith launch` test): the launcher calls
`watch(root)` once a container's overlay root is mounted (launch/container.py ROOT_WATCHERS);
the recorder puts a FAN_MARK_FILESYSTEM mark on that overlay's superblock, which nothing but
that one container uses. The kernel then reports every open (files and directories) and every
exec on it, whatever process of the container did it, with no ptrace and no tool in the image.
Each event carries an fd; its /proc/self/fd link names the file as the container sees it (the
container's root is the root of its own mount namespace). Mapped libraries are opened first,
so they are reported too. What the kernel does not report -- a stat without an open, the
symlinks walked on the way -- is made up for when the trace is kept (`kept_by_trace`): the ELF
closure of every traced ELF, glibc's own dlopens, and every symlink that leads to a kept entry.

Recording needs CAP_SYS_ADMIN (root), as running the container does.
"""
import ctypes
import errno
import json
import os
import re
import select
import stat
import struct
import threading
from typing import Dict, Iterable, List, Optional, Set, Tuple

from smith import safe_json
from smith.errors import SmithError

# <linux/fanotify.h>
FAN_CLASS_NOTIF = 0x0
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_UNLIMITED_QUEUE = 0x10
FAN_MARK_ADD = 0x1
FAN_MARK_FILESYSTEM = 0x100
FAN_OPEN = 0x20
FAN_OPEN_EXEC = 0x1000
FAN_Q_OVERFLOW = 0x4000
FAN_ONDIR = 0x40000000
FANOTIFY_METADATA_VERSION = 3
FAN_NOFD = -1
METADATA = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid

MAX_PATHS = 200000       # distinct paths a trace may hold
MAX_PATH_LEN = 4096      # PATH_MAX
MAX_TRACE_BYTES = 64 << 20
# Mounted over the image by the runtime (or volumes): never the image's files.
DROPPED_TOPS = ("dev", "proc", "read", "run", "sys", "write")
# What glibc itself dlopens, unseen by any ELF closure: the unwinder, when a thread exits.
GLIBC_DLOPENS = ("libgcc_s.so.1",)


# -- the trace ------------------------------------------------------------------------------------
class Trace:
    """Paths a workload used (`paths`), and those of them it executed (`executed`), sorted."""

    def __init__(self, paths: Iterable[str] = (), executed: Iterable[str] = ()) -> None:
        self.paths: Set[str] = set(paths)
        self.executed: Set[str] = set(executed)

    def add(self, path: str, executed: bool) -> None:
        if not executed and path.rsplit("/", 1)[-1] in GLIBC_DLOPENS:
            # Whether glibc gets to dlopen these depends on timing (libgcc_s: a thread exiting
            # before or after the process does), and the minimizer keeps them whenever libc is
            # kept: recording them would only make two traces of one workload differ.
            return
        if path not in self.paths and len(self.paths) >= MAX_PATHS:
            raise SmithError("the workload used more than %d distinct paths; a trace is capped "
                             "there (is it walking the whole file system?)" % MAX_PATHS)
        self.paths.add(path)
        if executed:
            self.executed.add(path)

    def to_json(self) -> bytes:
        doc = {"paths": sorted(self.paths), "executed": sorted(self.executed), "version": 1}
        return json.dumps(doc, sort_keys=True, indent=0, ensure_ascii=True).encode("ascii") + b"\n"


def container_path(raw: str, host_roots: Iterable[str] = ()) -> Optional[str]:
    """The image path of a reported file, or None when it is not one of the image's files.

    `raw` is the fd link's text. A path under one of `host_roots` was opened by the runtime from
    the host side before the container started (setting the root up): not the workload's.
    Mounted-over trees (/proc, /dev, /sys, /run, /read, /write) and `/` itself are dropped.
    """
    if not raw.startswith("/") or "\0" in raw or len(raw) > MAX_PATH_LEN:
        return None
    for host in host_roots:
        if raw == host or raw.startswith(host.rstrip("/") + "/"):
            return None
    parts = raw.split("/")[1:]
    if any(p in ("", ".", "..") for p in parts) or not parts:
        return None  # fd links are canonical: anything else is not a plain image path
    if parts[0] in DROPPED_TOPS:
        return None
    return "/" + "/".join(parts)


def _check_path(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SmithError("%s is %s, not a path string" % (where, type(value).__name__))
    if (not value.startswith("/") or "\0" in value or len(value) > MAX_PATH_LEN
            or container_path(value) != value):
        raise SmithError("%s %r is not an absolute, normalised image path" % (where, value[:200]))
    return value


def load_trace(path: str) -> Trace:
    """A trace file written by `smith trace`, checked (it is an input like any other)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TRACE_BYTES + 1)
    except OSError as e:
        raise SmithError("%s: cannot read the trace (%s)" % (path, e.strerror or e))
    if len(data) > MAX_TRACE_BYTES:
        raise SmithError("%s: the trace is larger than %d bytes" % (path, MAX_TRACE_BYTES))
    try:
        doc = safe_json.loads(data, path, MAX_TRACE_BYTES, expect=None)
    except SmithError as e:
        raise SmithError("%s; not a trace written by `smith trace`" % e) from None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise SmithError("%s: not a version 1 trace of `smith trace`" % path)
    lists = {}
    for key in ("paths", "executed"):
        value = doc.get(key)
        if not isinstance(value, list):
            raise SmithError("%s: `%s` must be a list of paths" % (path, key))
        if len(value) > MAX_PATHS:
            raise SmithError("%s: `%s` holds %d paths, more than the cap of %d"
                             % (path, key, len(value), MAX_PATHS))
        lists[key] = [_check_path(v, "%s: %s[%d]" % (path, key, i)) for i, v in enumerate(value)]
    unknown = set(lists["executed"]) - set(lists["paths"])
    if unknown:
        raise SmithError("%s: executed path %r is not among `paths`" % (path, sorted(unknown)[0]))
    return Trace(lists["paths"], lists["executed"])


# -- recording ------------------------------------------------------------------------------------
def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    lib.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                                  ctypes.c_char_p]
    return lib


def parse_events(buf: bytes) -> Tuple[List[Tuple[int, int]], int]:
    """(mask, fd) of each whole event in `buf`, and how many bytes they took."""
    out = []
    off = 0
    while len(buf) - off >= METADATA.size:
        event_len, vers, _, meta_len, mask, fd, _pid = METADATA.unpack_from(buf, off)
        if vers != FANOTIFY_METADATA_VERSION:
            raise SmithError("fanotify event version %d (expected %d): kernel and smith disagree"
                             % (vers, FANOTIFY_METADATA_VERSION))
        if event_len < METADATA.size or meta_len < METADATA.size or event_len > len(buf) - off:
            if event_len < METADATA.size:
                raise SmithError("fanotify gave a malformed event (length %d)" % event_len)
            break
        out.append((mask, fd))
        off += event_len
    return out, off


class Recorder:
    """fanotify marks on container roots; a thread drains events into a Trace until stop()."""

    def __init__(self, image: Optional[str] = None) -> None:
        self.libc = _libc()
        fd = self.libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE,
                                     os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise SmithError("fanotify_init failed: %s (tracing needs root: CAP_SYS_ADMIN)"
                             % os.strerror(err))
        self.fd = fd
        self.image = os.path.abspath(image) if image else None
        self.trace = Trace()
        self.roots: List[str] = []
        self.error: Optional[BaseException] = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="smith-trace", daemon=True)
        self.thread.start()

    def watch(self, image_path: Optional[str], root: str) -> None:
        """Mark the file system of a container root just mounted (of the traced image only:
        a client sidecar's image is not the one being minimized)."""
        if self.image is not None and image_path is not None and os.path.abspath(image_path) != self.image:
            return
        r = self.libc.fanotify_mark(self.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
                                    FAN_OPEN | FAN_OPEN_EXEC | FAN_ONDIR, -100,
                                    os.fsencode(root))
        if r != 0:
            err = ctypes.get_errno()
            raise SmithError("cannot watch the container root %s with fanotify: %s"
                             % (root, os.strerror(err)))
        self.roots.append(os.path.abspath(root))

    def _event(self, mask: int, fd: int) -> None:
        if mask & FAN_Q_OVERFLOW:
            raise SmithError("the fanotify queue overflowed: the trace would be incomplete")
        if fd == FAN_NOFD or fd < 0:
            return
        try:
            st = os.fstat(fd)
            if st.st_nlink == 0 and not stat.S_ISDIR(st.st_mode):
                return  # deleted since: not an image file
            raw = os.readlink("/proc/self/fd/%d" % fd)
        except OSError:
            return
        finally:
            os.close(fd)
        path = container_path(raw, self.roots)
        if path is not None:
            self.trace.add(path, bool(mask & FAN_OPEN_EXEC))

    def _drain(self) -> bool:
        got = False
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return got
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            if not buf:
                return got
            got = True
            events, _ = parse_events(buf)  # the kernel hands out whole events only
            for i, (mask, fd) in enumerate(events):
                try:
                    self._event(mask, fd)
                except BaseException:
                    for _, rest in events[i + 1:]:  # no fd leaks, whatever happened
                        if rest >= 0:
                            os.close(rest)
                    raise

    def _loop(self) -> None:
        try:
            poller = select.poll()
            poller.register(self.fd, select.POLLIN)
            while not self.stopping.is_set():
                poller.poll(100)
                self._drain()
        except BaseException as e:  # handed to stop()
            self.error = e

    def stop(self) -> Trace:
        self.stopping.set()
        self.thread.join()
        try:
            if self.error is None:
                self._drain()
        finally:
            os.close(self.fd)
        if self.error is not None:
            raise self.error if isinstance(self.error, SmithError) else SmithError(
                "recording the trace failed: %s" % self.error)
        return self.trace


# -- keeping --------------------------------------------------------------------------------------
def _links_to_kept(fs, kept: Set[str]) -> Set[str]:
    """Every symlink of the image that leads to a kept entry (or to a directory holding one):
    the kernel reports the file a link led to, never the link, so any of them may be the name
    the workload used. A link that loops or leaves the root leads nowhere and is not kept."""
    from smith.elf.rootfs import _try_resolve, walk_in_root
    dirs: Set[str] = set()
    for p in kept:
        d = os.path.dirname(p)
        while d not in ("/", "") and d not in dirs:
            dirs.add(d)
            d = os.path.dirname(d)
    out: Set[str] = set()
    for p in walk_in_root(fs, "/"):
        if not stat.S_ISLNK(os.lstat(fs.host(p)).st_mode):
            continue
        found = _try_resolve(fs, p)
        if found is not None and (found.path in kept or found.path in dirs):
            out.update(found.links)
    return out


def _glob_escape(path: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", path)


PYC = re.compile(r"^(.*)/__pycache__/([^/]+?)\.[^./]+(?:\.opt-\d)?\.pyc$")


def pyc_source(path: str) -> Optional[str]:
    """The source of a PEP 3147 .pyc (`d/__pycache__/m.cpython-311.pyc` -> `d/m.py`): Python
    reads an unchecked-hash .pyc without opening its source, but finds the module only where
    the source exists, so a traced .pyc keeps its .py."""
    m = PYC.match(path)
    return "%s/%s.py" % (m.group(1), m.group(2)) if m else None


STDLIB_DIR = re.compile(r"^(/(?:[^/]+/)*lib/python3\.\d+)/")


def python_landmarks(paths: Iterable[str]) -> Set[str]:
    """`D/os.py` of every `D = .../lib/python3.N` holding a kept path: CPython's getpath finds its
    prefix by stat'ing that landmark (unseen by fanotify; os itself is frozen, so never opened),
    and without it prints "Could not find platform independent libraries" at every start."""
    return {m.group(1) + "/os.py" for m in map(STDLIB_DIR.match, paths) if m}


def _resolve_quietly(fs, path: str):
    from smith.elf.rootfs import _try_resolve
    return _try_resolve(fs, path)


def kept_by_trace(closure, traces: List[Trace], warn) -> Set[str]:
    """What `traces` keep in the root of `closure` (a smith.elf.closure.Closure that already
    holds the image's program): each traced entry with the links on its way, the ELF closure
    of every executed program (scripts: their interpreters) and of every other traced ELF as
    the program dlopens it, glibc's own dlopens, and every symlink leading to a kept entry."""
    from smith.elf.rootfs import Unresolvable
    fs = closure.fs
    kept: Set[str] = set()
    paths = sorted(set().union(*(t.paths for t in traces)) if traces else ())
    executed = set().union(*(t.executed for t in traces)) if traces else set()
    for p in paths:
        try:
            found = fs.resolve(p)
        except Unresolvable as e:
            warn("traced path %s: %s; not kept" % (p, e))
            continue
        if found is None:
            continue  # e.g. a file the workload wrote to a volume mounted over the image
        mode = found.st.st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            continue
        kept.update(found.links)
        kept.add(found.path)
        if not stat.S_ISREG(mode):
            continue
        source = pyc_source(found.path)
        if source is not None:
            src = _resolve_quietly(fs, source)
            if src is not None and src.is_file:
                kept.update(src.links)
                kept.add(src.path)
        try:
            with open(fs.host(found.path), "rb") as f:
                head = f.read(4)
        except OSError:
            continue
        try:
            if p in executed:
                closure.add_program(found.path, why="traced program")
            elif head == b"\x7fELF":
                closure.add_extra_libs(_glob_escape(found.path))
        except SmithError as e:
            warn("traced %s: %s; kept as it is" % (p, e))
    if any(os.path.basename(p).startswith("libc.so.") for p in kept | set(closure.paths)):
        for proc in closure.processes:
            for name in GLIBC_DLOPENS:
                try:
                    obj = proc.map_object(name, proc.main)
                except SmithError:
                    continue
                if obj is not None:
                    proc.load_deps(obj)
            for obj in proc.objects:
                closure.keep(obj.found)
    for landmark in sorted(python_landmarks(kept)):
        found = _resolve_quietly(fs, landmark)
        if found is not None and found.is_file:
            kept.update(found.links)
            kept.add(found.path)
    kept |= closure.paths
    kept |= _links_to_kept(fs, kept)
    kept.discard("/")
    return kept


# -- why a replay failed --------------------------------------------------------------------------
HINTS = [
    (re.compile(r"ModuleNotFoundError: No module named '([^'\s]{1,200})'"), "Python module %s"),
    (re.compile(r"([\w.+-]{1,200}\.so[\w.]*): cannot open shared object file"), "shared library %s"),
    (re.compile(r"(lib[\w.+-]{1,200}\.so[\w.]*) must be installed"), "shared library %s"),
    (re.compile(r"No such file or directory: '(/[^'\n]{1,400})'"), "file %s"),
    (re.compile(r"(/[^\s:'\"]{1,400}): (?:No such file or directory|not found)"), "file %s"),
]


def missing_hints(output: str, limit: int = 10) -> List[str]:
    """What a failed replay's output says is missing, in order of appearance, e.g.
    ["Python module 'yaml._yaml'", "shared library libgcc_s.so.1"]."""
    found: Dict[int, str] = {}
    for pattern, what in HINTS:
        for m in pattern.finditer(output):
            text = what % repr(m.group(1)) if "module" in what else what % m.group(1)
            if text not in found.values():
                found[m.start()] = text
    return [found[k] for k in sorted(found)][:limit]
