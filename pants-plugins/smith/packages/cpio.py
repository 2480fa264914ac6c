"""A reader for the SVR4 "newc" cpio archives in rpm payloads, written with the stdlib
(Python has no cpio module). Each entry: "070701"/"070702", 13 8-digit hex fields, the
name, then the data, each padded to 4 bytes; "TRAILER!!!" ends it. Hard links share an
inode and only the last one carries the data."""
import stat
from typing import Dict, List, Tuple

from smith.errors import SmithError
from smith.packages.entries import Entry


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def entries(data: bytes, what: str) -> List[Entry]:
    out: List[Entry] = []
    links: Dict[Tuple[int, int, int], List[int]] = {}
    pos = 0
    while True:
        header = data[pos:pos + 110]
        if len(header) < 110 or header[:6] not in (b"070701", b"070702"):
            raise SmithError("%s: bad cpio header at byte %d of the payload; the package is "
                             "truncated or corrupt" % (what, pos))
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        ino, mode, _uid, _gid, nlink, _mtime, size, dev_major, dev_minor = fields[:9]
        namesize = fields[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode("utf-8", "surrogateescape")
        pos = _pad4(pos + 110 + namesize)
        if name == "TRAILER!!!":
            break
        body = data[pos:pos + size]
        if len(body) != size:
            raise SmithError("%s: cpio entry %s is cut short; the package is truncated" % (what, name))
        pos = _pad4(pos + size)
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            entry = Entry(name, "symlink", stat.S_IMODE(mode), b"", body.decode("utf-8", "surrogateescape"))
        elif kind == stat.S_IFDIR:
            entry = Entry(name, "dir", stat.S_IMODE(mode))
        elif kind == stat.S_IFREG:
            entry = Entry(name, "file", stat.S_IMODE(mode), body)
            if nlink > 1:
                links.setdefault((dev_major, dev_minor, ino), []).append(len(out))
        else:
            raise SmithError("%s: %s is a device, fifo or socket (mode %o); smith trees hold only "
                             "files, directories and symlinks" % (what, name, mode))
        out.append(entry)
    for group in links.values():
        content = next((out[i].data for i in group if out[i].data), b"")
        for i in group:
            out[i].data = content
    return out
