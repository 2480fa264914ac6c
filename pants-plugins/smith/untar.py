"""The one unpacker for every (untrusted) tar the core reads, and the caps on archive work.

Image layers, docker archives, tree tars for `smith closure`, SBOM layers, toolbox inputs and
the launcher's layer store all come through `extract()`. The stdlib `tarfile` parses headers
(stream mode, one header at a time); everything that touches the file system is here, and none
of tarfile's extract*/filter= machinery is used (Debian's python3 3.11.2 has no filters).

- Every entry is created with *at calls in a directory fd reached from the target root without
  following any symlink (smith.safe_fs: openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or an
  O_NOFOLLOW walk). A file is created O_CREAT|O_EXCL|O_NOFOLLOW; whatever stood at its name
  (a symlink to a host file, a directory) is removed first, never written through. Modes, owners
  and times are set with fchmod/fchown/futimens on the fd just created; a hardlink gets
  nothing set at all (it shares the inode of its target, which this unpacker made).
- Refused with a SmithError naming the input and entry: absolute names, "..", NUL bytes, names
  or symlink targets longer than the caps, paths deeper than the cap, entries below a symlink
  or a file, hardlinks to anything outside the tree, whiteouts of "", "." or "..".
- Caps (Limits): decompressed bytes per layer and per image, decompressed/compressed ratio,
  entries per archive, path length and depth; pax/GNU long-name headers at most 1 MiB. Work
  stops at the cap, not after the whole archive was written out.
- Whiteouts: APPLY stacks layers into one tree (`.wh.NAME` removes NAME, `.wh..wh..opq` removes
  what lower layers put in the directory); OVERLAY writes one layer as an overlayfs lower dir
  (0/0 character devices and the trusted.overlay.opaque xattr); NONE (tree tars) keeps such
  names as files. Devices and fifos are skipped with a note; setuid/setgid/sticky bits are
  dropped; directories keep u+rwx so later entries can be written into them.
"""
import errno
import gzip
import hashlib
import os
import queue
import stat
import sys
import tarfile
import threading
import zlib
from typing import BinaryIO, Iterator, List, Optional, Sequence, Set, Tuple

from smith import zstd
from smith.errors import SmithError
from smith.safe_fs import DIR_FLAGS as _DIR_FLAGS, Root, Unsafe, remove_at
from smith.text import PATH_MAX, printable

APPLY, OVERLAY, NONE = "apply", "overlay", "none"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_AHEAD = 4  # chunks decompressed ahead of the extraction (bounded memory)
_MAX_META = 1 << 20  # pax / GNU long name or link headers
_NAME_MAX = 255
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
               tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
# What a corrupt or hostile compressed stream or tar raises while being read.
STREAM_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) + zstd.ERRORS
_KiB, _MiB, _GiB = 1 << 10, 1 << 20, 1 << 30


class Limits:
    """Caps on archive work; each can be raised by a command-line option or an environment
    variable (the option wins). Sizes accept K/M/G/T suffixes (powers of 1024)."""

    # (attribute, option, environment variable, default, what it bounds)
    FIELDS = (
        ("layer_bytes", "--max-layer-bytes", "SMITH_MAX_LAYER_BYTES", 4 * _GiB,
         "decompressed bytes of one layer or tar"),
        ("image_bytes", "--max-image-bytes", "SMITH_MAX_IMAGE_BYTES", 16 * _GiB,
         "decompressed bytes of all layers of one image"),
        ("ratio", "--max-compression-ratio", "SMITH_MAX_COMPRESSION_RATIO", 100,
         "decompressed bytes per compressed byte of a layer (past its first 1 MiB x ratio)"),
        ("entries", "--max-entries", "SMITH_MAX_ENTRIES", 1000000,
         "entries of one layer or tar"),
        ("path_length", "--max-path-length", "SMITH_MAX_PATH_LENGTH", 4096,
         "bytes of an entry name or link target"),
        ("depth", "--max-depth", "SMITH_MAX_DEPTH", 256,
         "directory levels of an entry name"),
    )

    def __init__(self, **values: int) -> None:
        for attr, _, _, default, _ in self.FIELDS:
            setattr(self, attr, values.pop(attr, default))
        if values:
            raise TypeError("unknown limits: %s" % ", ".join(sorted(values)))

    def how_to_raise(self, attr: str) -> str:
        for a, option, env, _, _ in self.FIELDS:
            if a == attr:
                return "raise it with %s or %s if the input is genuine" % (option, env)
        raise KeyError(attr)

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        environ = os.environ if environ is None else environ
        values = {}
        for attr, _, env, _, _ in cls.FIELDS:
            if environ.get(env):
                values[attr] = parse_size(environ[env], env)
        return cls(**values)

    @classmethod
    def add_arguments(cls, parser) -> None:
        group = parser.add_argument_group("limits on archive work")
        for attr, option, env, default, help_text in cls.FIELDS:
            group.add_argument(option, dest="limit_" + attr, metavar="N",
                               help="most %s (default %s; also $%s)" % (help_text, _human(default), env))

    @classmethod
    def from_args(cls, args, environ=None) -> "Limits":
        limits = cls.from_env(environ)
        for attr, option, _, _, _ in cls.FIELDS:
            raw = getattr(args, "limit_" + attr, None)
            if raw is not None:
                setattr(limits, attr, parse_size(raw, option))
        return limits


def _human(n: int) -> str:
    for unit, size in (("T", 1 << 40), ("G", _GiB), ("M", _MiB), ("K", _KiB)):
        if n >= size and n % size == 0:
            return "%d%s" % (n // size, unit)
    return str(n)


def parse_size(raw: str, what: str) -> int:
    text = str(raw).strip().upper().rstrip("B").rstrip("I")
    mult = 1
    if text and text[-1] in "KMGT":
        mult = 1 << (10 * ("KMGT".index(text[-1]) + 1))
        text = text[:-1]
    if not text.isdigit() or int(text) <= 0:
        raise SmithError("%s: %r is not a positive whole number (K/M/G/T suffixes allowed)"
                         % (what, raw))
    return int(text) * mult


class Budget:
    """Decompressed bytes used so far by one image (shared by its layers)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.used = 0


class _Refused(Exception):
    """An entry the unpacker will not apply; turned into a SmithError naming input and entry."""


class _HeaderTooLarge(Exception):
    pass


class _GuardedTarInfo(tarfile.TarInfo):
    """tarfile reads a whole pax / GNU long-name header into memory: bound it first."""

    def _proc_member(self, tf):  # type: ignore[override]
        if self.type in _META_TYPES and self.size > _MAX_META:
            raise _HeaderTooLarge("a %s header of %d bytes (at most %d)"
                                  % ("pax" if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE,
                                                            tarfile.SOLARIS_XHDTYPE)
                                     else "GNU long name", self.size, _MAX_META))
        return super()._proc_member(tf)


class CountingReader:
    """Counts (and optionally hashes) what is read through it; stops at the caps."""

    def __init__(self, raw: BinaryIO, what: str, limits: Limits, budget: Optional[Budget] = None,
                 compressed: Optional["CountingReader"] = None, hash_it: bool = False) -> None:
        self.raw = raw
        self.what = what
        self.limits = limits
        self.budget = budget
        self.compressed = compressed
        self.count = 0
        self.sha256 = hashlib.sha256() if hash_it else None

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = _CHUNK
        data = self.raw.read(n)
        if data:
            self.count += len(data)
            if self.sha256 is not None:
                self.sha256.update(data)
            self._check(len(data))
        return data

    def _check(self, n: int) -> None:
        lim = self.limits
        if self.count > lim.layer_bytes:
            raise SmithError("%s: decompresses to more than %s bytes, the cap per layer; %s"
                             % (self.what, _human(lim.layer_bytes), lim.how_to_raise("layer_bytes")))
        if self.budget is not None:
            self.budget.used += n
            if self.budget.used > lim.image_bytes:
                raise SmithError("%s: the image's layers decompress to more than %s bytes, the cap "
                                 "per image; %s" % (self.what, _human(lim.image_bytes),
                                                     lim.how_to_raise("image_bytes")))
        if self.compressed is not None and self.compressed is not self:
            allowed = lim.ratio * max(self.compressed.count, _MiB)
            if self.count > allowed:
                raise SmithError("%s: %d compressed bytes decompress to more than %d (more than "
                                 "%d:1, a decompression bomb?); %s"
                                 % (self.what, self.compressed.count, allowed, lim.ratio,
                                    lim.how_to_raise("ratio")))

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def decompressed(raw: BinaryIO, what: str) -> BinaryIO:
    """Uncompressed view of a layer blob: gzip, zstd or plain tar, told apart by magic bytes.
    Reads from the current position (no seek: `raw` may be a pipe or a counting reader)."""
    head = raw.read(4)
    src = _Prefixed(head, raw)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[return-value, arg-type]
    if head == zstd.MAGIC:
        return zstd.stream_reader(src, what)  # type: ignore[arg-type]
    return src  # type: ignore[return-value]


class _Prefixed:
    """A stream with a few bytes already read put back in front."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self.head, self.raw = head, raw

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.raw.read(n - len(data))
            return data
        return self.raw.read(n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


def _check_name(name: str, what: str, limits: Limits) -> List[str]:
    if "\0" in name:
        raise _Refused("%s %r contains a NUL byte" % (what, name))
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > limits.path_length:
        raise _Refused("%s is %d bytes long, more than the cap of %d; %s"
                       % (what, len(raw), limits.path_length, limits.how_to_raise("path_length")))
    if name.startswith("/"):
        raise _Refused("%s %r is an absolute path" % (what, name))
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refused("%s %r contains '..'" % (what, name))
    if len(parts) > limits.depth:
        raise _Refused("%s is %d directories deep, more than the cap of %d; %s"
                       % (what, len(parts), limits.depth, limits.how_to_raise("depth")))
    for p in parts:
        if len(p.encode("utf-8", "surrogateescape")) > _NAME_MAX:
            raise _Refused("%s has a component longer than %d bytes" % (what, _NAME_MAX))
    return parts


class _Writer:
    """Applies tar entries under a root, fd-relative (see the module doc)."""

    def __init__(self, root: Root, whiteouts: str, owners: bool, limits: Limits) -> None:
        self.root = root
        self.whiteouts = whiteouts
        self.owners = owners
        self.limits = limits
        self.written: Set[str] = set()  # APPLY: what this layer wrote (opaque dirs keep it)
        self._cache: Optional[Tuple[Tuple[str, ...], int]] = None  # last parent dir fd

    def close(self) -> None:
        self._forget()

    def _forget(self) -> None:
        """Drop the cached parent fd: a removal may have detached the directory it names."""
        if self._cache is not None:
            os.close(self._cache[1])
            self._cache = None

    def _parent(self, parts: Sequence[str]) -> int:
        key = tuple(parts)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            fd = self.root.open_dir(parts, create=True)
        except Unsafe as e:
            raise _Refused(str(e))
        assert fd is not None
        self._forget()
        self._cache = (key, fd)
        return fd

    def _remove(self, dir_fd: int, name: str) -> None:
        """Remove dir_fd/name; the cached parent fd survives only if it is dir_fd itself (any
        other cached directory may lie in the removed subtree)."""
        if self._cache is not None and self._cache[1] != dir_fd:
            self._forget()
        remove_at(dir_fd, name)

    def apply(self, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        parts = _check_name(m.name, "the name", self.limits)
        if not parts:
            if self.owners and m.isdir():
                os.fchown(self.root.fd, m.uid, m.gid)
            return  # the root directory itself
        base = parts[-1]
        if self.whiteouts != NONE and base.startswith(WHITEOUT):
            self._whiteout(parts[:-1], base)
            return
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            print("smith: note: skipping device/fifo /%s" % printable("/".join(parts), PATH_MAX), file=sys.stderr)
            return
        pfd = self._parent(parts[:-1])
        if m.isdir():
            self._dir(pfd, base, m)
        elif m.issym():
            self._symlink(pfd, base, m)
        elif m.islnk():
            self._hardlink(pfd, base, m)
        else:
            self._file(pfd, base, m, tf)
        if self.whiteouts == APPLY:
            self.written.add("/".join(parts))
            for i in range(len(parts) - 1, 0, -1):  # parents, until one is known (O(depth) once)
                parent = "/".join(parts[:i])
                if parent in self.written:
                    break
                self.written.add(parent)

    def _dir(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        opaque = False
        dfd = None
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            try:
                dfd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                if self.whiteouts == OVERLAY:  # a whiteout of this layer: the dir hides lower ones
                    st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                    opaque = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
                self._remove(pfd, base)
                os.mkdir(base, 0o700, dir_fd=pfd)
        if dfd is None:
            dfd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
        try:
            if self.owners:
                os.fchown(dfd, m.uid, m.gid)
            os.fchmod(dfd, (m.mode & 0o777) | 0o700)
            if opaque:
                os.setxattr(dfd, "trusted.overlay.opaque", b"y")
        finally:
            os.close(dfd)

    def _symlink(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        target = m.linkname
        if "\0" in target or len(target.encode("utf-8", "surrogateescape")) > self.limits.path_length:
            raise _Refused("symlink target longer than the cap of %d bytes; %s"
                           % (self.limits.path_length, self.limits.how_to_raise("path_length")))
        if not target:
            raise _Refused("symlink with an empty target")
        try:
            os.symlink(target, base, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            os.symlink(target, base, dir_fd=pfd)
        if self.owners:  # fchownat(AT_SYMLINK_NOFOLLOW): the link itself, never its target
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        tparts = _check_name(m.linkname, "hardlink target", self.limits)
        if not tparts:
            raise _Refused("hardlink to the root directory")
        try:
            tfd = self.root.open_dir(tparts[:-1], create=False)
        except Unsafe as e:
            raise _Refused("hardlink target: %s" % e)
        if tfd is None:
            raise _Refused("hardlink target %r does not exist" % m.linkname)
        try:
            try:
                st = os.stat(tparts[-1], dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise _Refused("hardlink target %r does not exist" % m.linkname)
            if stat.S_ISDIR(st.st_mode):
                raise _Refused("hardlink target %r is a directory" % m.linkname)
            try:
                cur = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                if (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino):
                    return  # already that very file
                self._remove(pfd, base)
            except FileNotFoundError:
                pass
            try:  # linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink
                os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise _Refused("hardlink target %r does not exist" % m.linkname)
            except PermissionError:
                raise _Refused("hardlink target %r cannot be linked" % m.linkname)
        finally:
            os.close(tfd)

    def _file(self, pfd: int, base: str, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(base, flags, 0o600, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            fd = os.open(base, flags, 0o600, dir_fd=pfd)
        try:
            if m.size:
                src = tf.extractfile(m)
                left = m.size
                while left:
                    data = src.read(min(left, _CHUNK)) if src is not None else b""
                    if not data:
                        raise _Refused("content is truncated")
                    _write_all(fd, data)
                    left -= len(data)
            if self.owners:
                os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode & 0o777)
            mtime = int(m.mtime)
            if 0 <= mtime < 1 << 40:
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)

    def _whiteout(self, parent: List[str], base: str) -> None:
        name = base[len(WHITEOUT):]
        if base != OPAQUE and (name in ("", ".", "..") or "/" in name):
            raise _Refused("whiteout of %r" % name)
        if self.whiteouts == OVERLAY:
            pfd = self._parent(parent)
            if base == OPAQUE:
                os.setxattr(pfd, "trusted.overlay.opaque", b"y")
                return
            try:
                os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
            except FileExistsError:  # this layer re-creates it too: a dir must hide lower content
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    sub = os.open(name, _DIR_FLAGS,
                                  dir_fd=pfd)
                    try:
                        os.setxattr(sub, "trusted.overlay.opaque", b"y")
                    finally:
                        os.close(sub)
            return
        try:
            pfd = self.root.open_dir(parent, create=False)
        except Unsafe as e:
            raise _Refused(str(e))
        if pfd is None:
            return  # nothing below to hide
        try:
            if base == OPAQUE:
                self._clear(parent)
            else:
                self._remove(pfd, name)
        finally:
            os.close(pfd)

    def _clear(self, top: List[str]) -> None:
        """Opaque whiteout: drop what lower layers put in this directory, keep this layer's."""
        stack = [top]
        while stack:
            parts = stack.pop()
            dfd = self.root.open_dir(parts, create=False)
            if dfd is None:
                continue
            try:
                with os.scandir(dfd) as it:
                    children = [(c.name, c.is_dir(follow_symlinks=False)) for c in it]
                for name, is_dir in children:
                    child = "/".join(parts + [name])
                    if child not in self.written:
                        self._remove(dfd, name)
                    elif is_dir:
                        stack.append(parts + [name])
            finally:
                os.close(dfd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def members(stream: BinaryIO, what: str, limits: Optional[Limits] = None
            ) -> Iterator[Tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """The headers of an untrusted uncompressed tar stream, one at a time, with the TarFile to
    read a member's content from (tarfile.extractfile, before the next header). pax and GNU
    long-name headers are bounded before tarfile reads them, the entry count is capped, and
    nothing is kept (stream mode otherwise keeps every header); unreadable input is a
    SmithError naming `what`. Callers check names themselves (see check_name)."""
    limits = limits or Limits.from_env()
    count = 0
    name = None
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_GuardedTarInfo) as tf:
            while True:
                m = tf.next()
                if m is None:
                    return
                tf.members = []
                name = m.name
                count += 1
                if count > limits.entries:
                    raise SmithError("%s: more than %d entries, the cap per archive; %s"
                                     % (what, limits.entries, limits.how_to_raise("entries")))
                if m.isreg() and m.size > limits.layer_bytes:  # sparse files inflate past the stream
                    raise SmithError("%s: entry %r is %d bytes, more than the cap per layer; %s"
                                     % (what, name, m.size, limits.how_to_raise("layer_bytes")))
                yield m, tf
    except _HeaderTooLarge as e:
        raise SmithError("%s: %s%s; the archive is malicious or broken"
                         % (what, e, "" if name is None else " (after entry %r)" % name))
    except STREAM_ERRORS as e:
        raise SmithError("%s: not a readable tar (%s)" % (what, e))


def check_name(name: str, what: str, limits: Limits) -> List[str]:
    """The components of an entry name (no "", "." parts), or a SmithError: absolute, "..",
    NUL, longer or deeper than the caps, a component over 255 bytes."""
    try:
        return _check_name(name, "the name", limits)
    except _Refused as e:
        raise SmithError("%s: entry %r refused: %s; the archive is malicious or broken" % (what, name, e))


def extract(stream: BinaryIO, dest: str, what: str, whiteouts: str = NONE, owners: bool = False,
            limits: Optional[Limits] = None) -> None:
    """Apply the uncompressed tar `stream` to the existing directory `dest`. Raises SmithError
    (naming `what` and the entry) for anything refused or unreadable; what was written so far
    stays: callers extract into a temp dir and remove it on failure (safe_fs.remove_tree)."""
    limits = limits or Limits.from_env()
    try:
        root = Root(dest)
    except OSError as e:
        raise SmithError("%s: cannot open the target directory %s (%s)" % (what, dest, e.strerror))
    writer = _Writer(root, whiteouts, owners, limits)
    name = "?"
    try:
        for m, tf in members(stream, what, limits):
            name = m.name
            writer.apply(m, tf)
    except _Refused as e:
        raise SmithError("%s: entry %r refused: %s; the archive is malicious or broken"
                         % (what, name, e))
    except STREAM_ERRORS as e:  # while reading a member's content
        raise SmithError("%s: not a readable tar (%s)" % (what, e))
    except OSError as e:
        raise SmithError("%s: entry %r could not be written (%s)" % (what, name, e.strerror or e))
    finally:
        writer.close()
        root.close()


def extract_file(tar_path: str, dest: str, whiteouts: str = NONE, owners: bool = False,
                 limits: Optional[Limits] = None) -> None:
    """extract() of an uncompressed tar file (a regular file: a fifo or device is refused)."""
    from smith.safe_fs import open_regular
    limits = limits or Limits.from_env()
    try:
        fd = open_regular(tar_path)
    except Unsafe as e:
        raise SmithError("%s: %s" % (tar_path, e))
    except OSError as e:
        raise SmithError("%s: cannot read it (%s)" % (tar_path, e.strerror))
    with os.fdopen(fd, "rb") as f:
        reader = CountingReader(f, tar_path, limits)
        extract(reader, dest, tar_path, whiteouts, owners, limits)  # type: ignore[arg-type]


class _ReadAhead:
    """Reads `source` (the decompressing, counting, hashing reader of a layer) on a thread of its
    own, up to _AHEAD chunks ahead: zlib and zstd decompress and sha256 hashes without the GIL, so
    they run on one core while the extraction creates files on the other. What `source` raises
    (caps, corrupt stream) is raised by read() at the same point of the stream; close() stops
    the thread."""

    def __init__(self, source: "CountingReader") -> None:
        self._queue: "queue.Queue" = queue.Queue(_AHEAD)
        self._stop = threading.Event()
        self._buf, self._pos, self._done = b"", 0, False
        self._thread = threading.Thread(target=self._run, args=(source,), name="smith-inflate",
                                        daemon=True)
        self._thread.start()

    def _run(self, source: "CountingReader") -> None:
        try:
            while True:
                data = source.read(_CHUNK)
                if not self._put((data, None)) or not data:
                    return
        except BaseException as e:  # raised again by read(), in the extracting thread
            self._put((b"", e))

    def _put(self, item) -> bool:
        while not self._stop.is_set():  # the reader may have stopped: never block for ever
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = _CHUNK
        while self._pos >= len(self._buf):
            if self._done:
                return b""
            data, error = self._queue.get()
            if error is not None or not data:
                self._done = True
                if error is not None:
                    raise error
                return b""
            self._buf, self._pos = data, 0
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def apply_layer(raw: BinaryIO, dest: str, what: str, diff_id: Optional[str] = None,
                whiteouts: str = APPLY, owners: bool = False, limits: Optional[Limits] = None,
                budget: Optional[Budget] = None) -> str:
    """Apply one layer blob (gzip, zstd or plain tar, read from its current position) into
    `dest`. Checks the uncompressed bytes against `diff_id` when given (the caller checks the
    blob digest first); returns the diff_id computed. Stops at the caps of `limits`."""
    limits = limits or Limits.from_env()
    packed = CountingReader(raw, what, limits)
    try:
        plain = decompressed(packed, what)  # type: ignore[arg-type]
    except OSError as e:
        raise SmithError("%s: cannot read the layer (%s)" % (what, e))
    except STREAM_ERRORS as e:
        raise SmithError("%s: the compressed stream is corrupt (%s)" % (what, e))
    reader = CountingReader(plain, what, limits, budget, compressed=packed, hash_it=True)
    ahead = _ReadAhead(reader)
    try:
        extract(ahead, dest, what, whiteouts, owners, limits)  # type: ignore[arg-type]
        try:
            ahead.drain()
        except STREAM_ERRORS + (OSError,) as e:
            raise SmithError("%s: the compressed stream is corrupt (%s)" % (what, e))
    finally:
        ahead.close()  # the hash below is complete only once the reading thread is done
    got = "sha256:" + reader.sha256.hexdigest()  # type: ignore[union-attr]
    if diff_id is not None and got != diff_id:
        raise SmithError("%s: uncompressed content is %s but the image config says diff_id %s; "
                         "the image is corrupt or tampered with" % (what, got, diff_id))
    return got


def digest_file(fd: int, expected: str, size: Optional[int], what: str) -> None:
    """Hash an open blob, reading at most size + 1 bytes, and compare with its descriptor."""
    h = hashlib.sha256()
    got = 0
    while True:
        want = _CHUNK if size is None else min(_CHUNK, size + 1 - got)
        if want <= 0:
            break
        chunk = os.read(fd, want)
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    if size is not None and got != size:
        raise SmithError("%s: blob %s is %s bytes, its descriptor says %d"
                         % (what, expected, "more than %d" % size if got > size else got, size))
    if "sha256:" + h.hexdigest() != expected:
        raise SmithError("%s: blob %s has digest sha256:%s — its content does not match its "
                         "name; refusing to apply it" % (what, expected, h.hexdigest()))


__all__ = ["APPLY", "OVERLAY", "NONE", "Limits", "Budget", "CountingReader", "extract", "members",
           "check_name",
           "extract_file", "apply_layer", "decompressed", "parse_size", "STREAM_ERRORS",
           "digest_file"]
