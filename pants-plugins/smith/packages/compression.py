"""Decompress a payload by its magic bytes (gzip, xz/lzma, zstd, bzip2, or none)."""
import bz2
import gzip
import lzma
import zlib

from smith import zstd
from smith.errors import SmithError


def decompress(data: bytes, what: str) -> bytes:
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)
        if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
            return lzma.decompress(data)
        if data[:4] == zstd.MAGIC:
            return zstd.decompress(data, what)
        if data[:3] == b"BZh":
            return bz2.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) + zstd.ERRORS as e:
        raise SmithError("%s: cannot decompress (%s); the file is truncated or corrupt" % (what, e))
    return data
