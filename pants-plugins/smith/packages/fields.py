"""The fields of repository metadata (deb Release and Packages, rpm repomd.xml and primary.xml)
that name a file or are read as a number, checked before use: a repository is a stranger's
(an unsigned `trusted` one above all), and these values become cache file names, URLs and sizes.

- a sha256 is 64 hexadecimal digits (given in either case; used in lowercase);
- a size is plain decimal digits (no sign, space or `_`, which int() would take) within a cap;
- a package name is what Debian policy and rpm allow (letters, digits, `+ . _ ~ ^ -`, starting
  with a letter or digit): names become path segments (`in/NAME` of a merge) and arguments;
- a version is made of what Debian and rpm versions are (letters, digits, `. + ~ ^ _ : -`):
  it is printed, stored in lockfiles and compared;
- a file's path is relative to the repository, made of named segments: not absolute, no `.`,
  `..` or empty segment, no `\\`, `?`, `#`, space or control character, also once %-decoded
  (a file:// URL is read through its %-decoded path).
Each error names the field, the value (escaped) and what to do; the caller says where it was."""
import re
import urllib.parse

from smith.errors import SmithError
from smith.text import printable

SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")
_DECIMAL = re.compile(r"[0-9]{1,20}\Z")
_PATH_BAD = re.compile(r"[\\?#\s]")
PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._~^-]{0,199}\Z")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~^_:-]{0,199}\Z")
MAX_INDEX_BYTES = 1 << 30     # a metadata file; Debian's biggest Packages.xz is ~10 MB
MAX_PACKAGE_BYTES = 1 << 36   # a package file; the biggest in Debian are a few GB
HINT = "the repository's metadata is malformed or hostile; fix the repository or stop using it"


def sha256(value: object, field: str, where: str) -> str:
    _present(value, field, where)
    text = value.lower() if isinstance(value, str) else None
    if text is None or not SHA256_HEX.match(text):
        raise SmithError("%s: %s %s is not a sha256 (64 hexadecimal digits); %s"
                         % (where, field, _shown(value), HINT))
    return text


def size(value: object, field: str, where: str, cap: int) -> int:
    _present(value, field, where)
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise SmithError("%s: %s %s is not a size in bytes (decimal digits); %s"
                         % (where, field, _shown(value), HINT))
    if int(value) > cap:
        raise SmithError("%s: %s %s is more than the %d bytes smith accepts; %s"
                         % (where, field, value, cap, HINT))
    return int(value)


def package_name(value: object, field: str, where: str) -> str:
    return _matching(PACKAGE_NAME, value, field, where, "a package name (a letter or digit, then "
                     "letters, digits and + . _ ~ ^ -, at most 200)")


def version(value: object, field: str, where: str) -> str:
    return _matching(VERSION, value, field, where, "a version (a letter or digit, then letters, "
                     "digits and . + ~ ^ _ : -, at most 200)")


def _matching(pattern, value: object, field: str, where: str, what: str) -> str:
    _present(value, field, where)
    if not isinstance(value, str) or not pattern.match(value):
        raise SmithError("%s: %s %s is not %s; %s" % (where, field, _shown(value), what, HINT))
    return value


def relative_path(value: object, field: str, where: str) -> str:
    _present(value, field, where)
    if not isinstance(value, str) or not all(
            _named_segments(p) for p in (value, urllib.parse.unquote(value))):
        raise SmithError("%s: %s %s is not a path inside the repository (relative, without "
                         "`..`, `.` or empty segments, spaces or control characters); %s"
                         % (where, field, _shown(value), HINT))
    return value


def _named_segments(path: str) -> bool:
    return (not path.startswith("/") and not _PATH_BAD.search(path) and path.isprintable()
            and all(s not in ("", ".", "..") for s in path.split("/")))


def _present(value: object, field: str, where: str) -> None:
    if value is None or value == "":
        raise SmithError("%s: %s is missing; %s" % (where, field, HINT))


def _shown(value: object) -> str:
    return "'%s'" % printable(value, 100) if isinstance(value, str) else "of type %s" % type(value).__name__
