"""Decompress a payload by its magic bytes (gzip, xz/lzma, zstd, bzip2, or none), in memory,
never to more than a cap (Limits.layer_bytes of smith.untar: SMITH_MAX_LAYER_BYTES): a small
package or repository index that inflates without end stops there with a clear error."""
import bz2
import io
import lzma
import zlib
from typing import Optional

from smith import zstd
from smith.errors import SmithError
from smith.untar import Limits, _human

_CHUNK = 1 << 20


def _capped(decomp_factory, data: bytes, cap: int) -> bytes:
    """Run one incremental decompressor per concatenated stream with max_length: output never
    grows past cap + 1 bytes. Below max_length a decompressor consumes all its input, so a
    stream that has not reached its end then is truncated."""
    out = bytearray()
    rest = data
    while rest:
        d = decomp_factory()
        chunk = d.decompress(rest, cap + 1 - len(out))
        if len(out) + len(chunk) > cap:
            raise _TooLarge()
        if not d.eof:
            raise EOFError("compressed data ended before the end-of-stream marker")
        rest = d.unused_data.lstrip(b"\0")  # gzip allows zero padding after the last member
        if not out and not rest:
            return chunk  # one stream (the usual case): no copies (a 50 MB index was 3 at the peak)
        out += chunk
    return bytes(out)


def _zstd(data: bytes, cap: int, what: str) -> bytes:
    reader = zstd.stream_reader(io.BytesIO(data), what)
    out = bytearray()
    while len(out) <= cap:
        chunk = reader.read(min(_CHUNK, cap + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
    raise _TooLarge()


class _TooLarge(Exception):
    pass


def decompress(data: bytes, what: str, limits: Optional[Limits] = None) -> bytes:
    limits = limits or Limits.from_env()
    cap = limits.layer_bytes
    try:
        if data[:2] == b"\x1f\x8b":
            return _capped(lambda: zlib.decompressobj(wbits=31), data, cap)
        if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
            return _capped(lzma.LZMADecompressor, data, cap)
        if data[:4] == zstd.MAGIC:
            return _zstd(data, cap, what)
        if data[:3] == b"BZh":
            return _capped(bz2.BZ2Decompressor, data, cap)
    except _TooLarge:
        raise SmithError("%s: decompresses to more than %s bytes; %s"
                         % (what, _human(cap), limits.how_to_raise("layer_bytes")))
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) + zstd.ERRORS as e:
        raise SmithError("%s: cannot decompress (%s); the file is truncated or corrupt" % (what, e))
    return data
