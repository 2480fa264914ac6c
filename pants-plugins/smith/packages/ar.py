"""A reader for the `ar` archives that .deb files are, written with the stdlib (Python has
no ar module): "!<arch>\n", then per member a 60-byte header and its data padded to even."""
from typing import Dict

from smith.errors import SmithError

MAGIC = b"!<arch>\n"


def members(data: bytes, what: str) -> Dict[str, bytes]:
    if not data.startswith(MAGIC):
        raise SmithError("%s is not an ar archive (a .deb starts with !<arch>)" % what)
    out: Dict[str, bytes] = {}
    pos = len(MAGIC)
    while pos < len(data):
        header = data[pos:pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise SmithError("%s: broken ar member header at byte %d; the file is truncated or "
                             "corrupt" % (what, pos))
        name = header[0:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise SmithError("%s: bad ar member size at byte %d" % (what, pos))
        start = pos + 60
        if start + size > len(data):
            raise SmithError("%s: ar member %s is cut short; the file is truncated" % (what, name))
        out[name] = data[start:start + size]
        pos = start + size + (size & 1)
    return out
