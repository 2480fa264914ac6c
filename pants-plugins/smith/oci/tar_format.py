"""Byte-exact tar headers (POSIX ustar, plus a pax record only when a field does not fit).

Written by hand rather than with `tarfile` so that the bytes of a layer never depend on the
Python version: same entries in, same bytes out. uname/gname stay empty, there are no
atime/ctime records, and pax headers appear only for long or non-ASCII names/link targets
(or numbers too large for their octal field).
"""
from typing import List, Tuple

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

REGTYPE = b"0"
LNKTYPE = b"1"
SYMTYPE = b"2"
DIRTYPE = b"5"
PAXTYPE = b"x"

# Largest values the octal fields hold (7 digits for mode/uid/gid, 11 for size/mtime).
_MAX7 = 0o7777777
_MAX11 = 0o77777777777
_PAX_NAME = b"././@PaxHeader"


def padding(size: int) -> bytes:
    """Zero bytes that round `size` up to a whole block."""
    return b"\0" * (-size % BLOCK)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: bytes) -> bytes:
    # "LEN key=value\n" where LEN counts the whole record, its own digits included.
    body = b" " + key.encode("ascii") + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode("ascii") + body


def _fits(text: bytes, limit: int) -> bool:
    return len(text) <= limit and all(b < 0x80 for b in text)


def _block(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
           typeflag: bytes, linkname: bytes) -> bytes:
    header = b"".join((
        name[:100].ljust(100, b"\0"),
        _octal(mode, 8), _octal(uid, 8), _octal(gid, 8),
        _octal(size, 12), _octal(mtime, 12),
        b"        ",  # checksum placeholder: 8 spaces while summing
        typeflag,
        linkname[:100].ljust(100, b"\0"),
        b"ustar\x0000",
        b"\0" * 32, b"\0" * 32,  # uname, gname: empty on purpose
        _octal(0, 8), _octal(0, 8),  # devmajor, devminor
        b"\0" * 155,  # prefix: unused, long names go to pax
    )).ljust(BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


def header(name: str, typeflag: bytes, mode: int, uid: int, gid: int, size: int,
           mtime: int, linkname: str = "") -> bytes:
    """The header block(s) for one entry; `name` ends with "/" for directories."""
    bname = name.encode("utf-8", "surrogateescape")
    blink = linkname.encode("utf-8", "surrogateescape")
    records: List[Tuple[str, bytes]] = []
    if not _fits(bname, 100):
        records.append(("path", bname))
    if not _fits(blink, 100):
        records.append(("linkpath", blink))
    if size > _MAX11:
        records.append(("size", str(size).encode("ascii")))
    if uid > _MAX7:
        records.append(("uid", str(uid).encode("ascii")))
    if gid > _MAX7:
        records.append(("gid", str(gid).encode("ascii")))
    if mtime > _MAX11 or mtime < 0:
        records.append(("mtime", str(mtime).encode("ascii")))
    out = b""
    if records:
        payload = b"".join(_pax_record(k, v) for k, v in records)
        out = _block(_PAX_NAME, 0o644, 0, 0, len(payload), _clamp(mtime, _MAX11), PAXTYPE, b"")
        out += payload + padding(len(payload))
        # The ustar fields get an ASCII stand-in; readers use the pax values.
        bname = bname.decode("utf-8", "surrogateescape").encode("ascii", "replace")
        blink = blink.decode("utf-8", "surrogateescape").encode("ascii", "replace")
    return out + _block(bname, mode, _clamp(uid, _MAX7), _clamp(gid, _MAX7),
                        _clamp(size, _MAX11), _clamp(mtime, _MAX11), typeflag, blink)


def _clamp(value: int, limit: int) -> int:
    return min(max(value, 0), limit)
