"""A gzip writer whose output depends only on the input bytes (and the zlib build).

Fixed choices, so that a layer digest is reproducible: compression level 6 (gzip's and
Docker's default: the usual speed/size trade-off), window 15, memLevel 8, default strategy,
header mtime 0, no file name, XFL 0, OS 255 ("unknown"). It hashes what it writes, so the
layer digest comes out of the same pass that compresses.
"""
import hashlib
import struct
import zlib
from typing import BinaryIO

LEVEL = 6
_HEADER = b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x00\xff"


class GzipSink:
    def __init__(self, out: BinaryIO, level: int = LEVEL) -> None:
        self._out = out
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
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

    def write(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._isize += len(data)
        self._emit(self._deflate.compress(data))

    def close(self) -> None:
        self._emit(self._deflate.flush())
        self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._isize & 0xFFFFFFFF))
