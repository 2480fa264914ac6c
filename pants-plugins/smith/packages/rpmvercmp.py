"""rpm version comparison, written here (no maintained PyPI library does it for Python 3.9
without librpm): a port of rpm's rpmvercmp() and of its epoch:version-release ordering."""
import re
from typing import Optional, Tuple

_SEGMENT = re.compile(r"(~|\^|[0-9]+|[A-Za-z]+)")


def _segments(s: str):
    # rpm skips every character that is not alphanumeric, ~ or ^ (they only separate).
    return _SEGMENT.findall(s)


def rpmvercmp(a: str, b: str) -> int:
    """Compare two version (or release) strings as rpm does: -1, 0 or 1."""
    if a == b:
        return 0
    sa, sb = _segments(a), _segments(b)
    i = 0
    while True:
        x = sa[i] if i < len(sa) else None
        y = sb[i] if i < len(sb) else None
        # Tilde sorts before everything, even the end of the string.
        if x == "~" or y == "~":
            if x != "~":
                return 1
            if y != "~":
                return -1
            i += 1
            continue
        # Caret sorts after the end of the string but before anything else.
        if x == "^" or y == "^":
            if x is None:
                return -1
            if y is None:
                return 1
            if x != "^":
                return 1
            if y != "^":
                return -1
            i += 1
            continue
        if x is None or y is None:
            if x is None and y is None:
                return 0
            return -1 if x is None else 1
        xnum, ynum = x.isdigit(), y.isdigit()
        if xnum != ynum:
            # A numeric segment is newer than an alphabetic one.
            return 1 if xnum else -1
        if xnum:
            x, y = x.lstrip("0"), y.lstrip("0")
            if len(x) != len(y):
                return 1 if len(x) > len(y) else -1
        if x != y:
            return 1 if x > y else -1
        i += 1


EVR = Tuple[str, str, Optional[str]]


def parse_evr(s: str) -> EVR:
    """'1:2.3-4' -> ('1', '2.3', '4'); a missing epoch is 0, a missing release is None."""
    epoch = "0"
    if ":" in s:
        epoch, s = s.split(":", 1)
        epoch = epoch or "0"
    release = None
    if "-" in s:
        s, release = s.rsplit("-", 1)
    return epoch, s, release


def evr_compare(a: str, b: str) -> int:
    """Compare two epoch:version-release strings. A side without release compares equal on
    release (so `Requires: foo >= 1.0` is met by foo-1.0-3), as rpm does for dependencies."""
    ea, va, ra = parse_evr(a)
    eb, vb, rb = parse_evr(b)
    c = (int(ea) > int(eb)) - (int(ea) < int(eb))
    if c:
        return c
    c = rpmvercmp(va, vb)
    if c or ra is None or rb is None:
        return c
    return rpmvercmp(ra, rb)
