"""Text from strangers (a repository's metadata, an image's programs) made safe to print in an
error: control characters, terminal escapes among them, are shown escaped, and the length is
capped. Imports only smith.errors, so any part of the core (the runtime too) may use it; the
registry client prints what servers say through it too."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

from smith.errors import escaped

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

PATH_MAX = 4096  # a limit for paths: Linux's PATH_MAX, so no path a system can use is cut


def printable(text: Union[str, bytes], limit: int = 300) -> str:
    """`text` (bytes are read as UTF-8) cut to `limit` characters, each non-printable one (ESC,
    CR, BEL, a newline, ...) written as its Python escape (\\x1b, \\r, ...)."""
    if isinstance(text, bytes):
        text = text[:limit * 4].decode("utf-8", "replace")
    return escaped(text[:limit])
