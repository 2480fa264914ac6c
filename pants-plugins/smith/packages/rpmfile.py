"""Read the files of an .rpm, written with the stdlib (no maintained pure-Python rpm reader):
96-byte lead, signature header (padded to 8 bytes), main header, then the compressed cpio
payload. Header layout: magic 8eade801, 4 reserved bytes, entry count, data size, then
16-byte index entries (tag, type, offset, count) and the data store."""
import struct
from typing import Dict, List, Tuple

from smith.errors import SmithError
from smith.packages import cpio
from smith.packages.compression import decompress
from smith.packages.entries import Entry

LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
TAG_NAME = 1000
TAG_PAYLOADFORMAT = 1124
STRING_TYPES = (6, 8, 9)   # STRING, STRING_ARRAY, I18NSTRING


def _header(data: bytes, pos: int, what: str) -> Tuple[Dict[int, object], int]:
    """Parse one header at POS; return {tag: value (strings only)} and the end offset."""
    if data[pos:pos + 4] != HEADER_MAGIC:
        raise SmithError("%s: no rpm header at byte %d; the package is truncated or corrupt" % (what, pos))
    if len(data) < pos + 16:
        raise SmithError("%s: the rpm header is cut short; the package is truncated" % what)
    count, size = struct.unpack(">II", data[pos + 8:pos + 16])
    store = pos + 16 + 16 * count
    end = store + size
    if end > len(data):
        raise SmithError("%s: the rpm header is cut short; the package is truncated" % what)
    tags: Dict[int, object] = {}
    for i in range(count):
        tag, typ, offset, n = struct.unpack(">iiii", data[pos + 16 + 16 * i:pos + 32 + 16 * i])
        if typ in STRING_TYPES:
            raw = data[store + offset:end].split(b"\0")[:max(n, 1)]
            values = [v.decode("utf-8", "replace") for v in raw]
            tags[tag] = values[0] if typ == 6 else values
    return tags, end


def _parts(data: bytes, what: str) -> Tuple[Dict[int, object], bytes]:
    if data[:4] != LEAD_MAGIC:
        raise SmithError("%s is not an rpm package (no rpm lead)" % what)
    _, end = _header(data, 96, what)           # signature header
    end = (end + 7) & ~7
    tags, end = _header(data, end, what)
    return tags, data[end:]


def package_name(data: bytes, what: str) -> str:
    return str(_parts(data, what)[0].get(TAG_NAME, ""))


def entries(data: bytes, what: str) -> List[Entry]:
    tags, payload = _parts(data, what)
    if tags.get(TAG_PAYLOADFORMAT, "cpio") != "cpio":
        raise SmithError("%s: payload format %s is not supported (only cpio)"
                         % (what, tags.get(TAG_PAYLOADFORMAT)))
    out = []
    for e in cpio.entries(decompress(payload, what + " payload"), what):
        path = e.path
        while path.startswith("./") or path.startswith("/"):
            path = path[2:] if path.startswith("./") else path[1:]
        if path and path != ".":
            e.path = path.rstrip("/")
            out.append(e)
    return out
