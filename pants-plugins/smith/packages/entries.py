"""One file system entry of a package, before it is written into a tree tar."""
from dataclasses import dataclass


@dataclass
class Entry:
    path: str                 # relative, no leading "/" or "./"
    kind: str                 # "file", "dir" or "symlink"
    mode: int                 # permission bits (incl. setuid etc., kept as shipped)
    data: bytes = b""
    target: str = ""          # symlink target, as shipped
