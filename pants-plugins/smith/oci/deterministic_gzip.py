"""A gzip writer whose output depends only on the input bytes (and the zlib build), compressed
on every core.

Fixed choices, so that a layer digest is reproducible: compression level 6 (gzip's and
Docker's default: the usual speed/size trade-off), window 15, memLevel 8, default strategy,
header mtime 0, no file name, XFL 0, OS 255 ("unknown"). It hashes what it writes, so the
layer digest comes out of the same pass that compresses.

Parallel the way pigz is: the input is cut into fixed blocks of BLOCK_SIZE bytes; each block is
deflated on its own, primed with the 32 KiB of input before it as a preset dictionary, and ends
with a sync flush (an empty stored block) so the next one starts on a byte boundary; the last
ends the stream. The concatenation is one ordinary deflate stream that any gzip reader accepts,
and since a block's bytes depend only on its input, its dictionary, the level and BLOCK_SIZE,
the output is the same for any number of threads and any timing (zlib releases the GIL while it
compresses, so threads really run in parallel). Images built before this writer (one
unbroken deflate stream) had other layer digests for the same files.

Why zlib and not a faster deflate (measured on the 210 MB bench tree, 128 KiB blocks, one core):
zlib 1.2.13 level 6 took 6.5 s of CPU for 78.6 MB; zlib-ng 1.1.0 (the PyPI bindings) level 6
3.0 s for 79.5 MB (+1.2%), ISA-L (isal 1.9.1) level 3 0.8 s for 84.8 MB (+7.8%). Both pick
code paths by CPU at run time; zlib-ng's output has been seen to differ between x86-64 and
aarch64 and its maintainers promise no byte-stable output: a layer digest could then depend on
the machine that built it. zlib's deflate has no CPU-dispatched code: one version, one output
(what reproducible layer digests already rely on).
"""
import hashlib
import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Deque, Optional

LEVEL = 6
BLOCK_SIZE = 128 << 10  # pigz's default block size: part of the output format, never tuned per run
DICT_SIZE = 32 << 10  # deflate's window
_HEADER = b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x00\xff"


def default_threads() -> int:
    """Cores this process may use (SMITH_GZIP_THREADS overrides; the output does not change)."""
    env = os.environ.get("SMITH_GZIP_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _deflate_block(data, dictionary, level: int, last: bool) -> bytes:
    if len(dictionary):
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class GzipSink:
    """write() bytes, then close(); `sha256` and `size` describe the compressed output.

    Blocks are cut from the written data as memoryviews, not copies: write_owned() hands over
    a buffer the caller will not touch again (the tar producer's fresh chunks); write() copies
    only what it must keep of a mutable buffer."""

    def __init__(self, out: BinaryIO, level: int = LEVEL, threads: Optional[int] = None) -> None:
        self._out = out
        self._level = level
        self._threads = threads or default_threads()
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending: Deque[Future] = deque()
        self._partial = bytearray()  # the start of the next block
        self._held: Optional[memoryview] = None  # a whole block: the last one ends the stream
        self._dict = memoryview(b"")
        self._crc = 0
        self._isize = 0
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._emit(_HEADER)

    def _emit(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self.sha256.update(data)
            self.size += len(data)

    def write(self, data) -> None:
        self.write_owned(data if isinstance(data, bytes) else bytes(data))

    def write_owned(self, data) -> None:
        """Like write(), but `data` (bytes or a bytearray) is never changed afterwards, so
        blocks can point into it."""
        self._crc = zlib.crc32(data, self._crc)
        self._isize += len(data)
        view = memoryview(data)
        start = 0
        if self._partial:
            start = min(len(view), BLOCK_SIZE - len(self._partial))
            self._partial += view[:start]
            if len(self._partial) < BLOCK_SIZE:
                return
            self._push(memoryview(bytes(self._partial)))
            self._partial = bytearray()
        end = len(view)
        while end - start >= BLOCK_SIZE:
            self._push(view[start:start + BLOCK_SIZE])
            start += BLOCK_SIZE
        if start < end:
            self._partial += view[start:]

    def _push(self, block: memoryview) -> None:
        """A whole block: the one held before it is not the last, so it goes out."""
        if self._held is not None:
            self._submit(self._held, last=False)
        self._held = block

    def _submit(self, block: memoryview, last: bool) -> None:
        dictionary, self._dict = self._dict, block[-DICT_SIZE:]
        if self._threads == 1:
            self._emit(_deflate_block(block, dictionary, self._level, last))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="smith-gzip")
        self._pending.append(self._pool.submit(_deflate_block, block, dictionary, self._level, last))
        while len(self._pending) > 2 * self._threads:  # bounded memory: ~2 blocks per thread in flight
            self._emit(self._pending.popleft().result())

    def close(self) -> None:
        try:
            if self._partial:
                self._push(memoryview(bytes(self._partial)))
                self._partial = bytearray()
            self._submit(self._held if self._held is not None else memoryview(b""), last=True)
            self._held = None
            while self._pending:
                self._emit(self._pending.popleft().result())
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._isize & 0xFFFFFFFF))
