"""What the solver sees of a package, the same for deb and rpm.

A dependency clause is a list of alternatives (deb `a | b`, rpm `(a or b)`); each
alternative is a Relation (name, op, version). Version strings are compared with the
kind's own ordering (python-debian for deb, rpmvercmp for rpm).
"""
import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from debian.debian_support import Version

from smith.errors import SmithError
from smith.packages.rpmvercmp import evr_compare
from smith.text import printable

OPS = ("<<", "<=", "=", ">=", ">>")


@dataclass(frozen=True)
class Relation:
    name: str
    op: Optional[str] = None       # one of OPS or None (any version)
    version: Optional[str] = None

    def __str__(self) -> str:
        return self.name if self.op is None else "%s (%s %s)" % (self.name, self.op, self.version)


@dataclass
class Package:
    name: str
    version: str
    arch: str
    url: str
    sha256: str
    size: int
    depends: List[List[Relation]] = field(default_factory=list)
    provides: List[Relation] = field(default_factory=list)
    conflicts: List[Relation] = field(default_factory=list)
    files: List[str] = field(default_factory=list)   # rpm file provides (primary.xml <file>)
    source: str = ""                                 # where the metadata came from (suite)
    rank: int = 9                                    # deb Priority; lower is preferred among providers

    def __str__(self) -> str:
        return "%s %s (%s)" % (self.name, self.version, self.arch)


def deb_compare(a: str, b: str) -> int:
    try:
        va, vb = Version(a), Version(b)
    except ValueError:  # a repository's (or a lockfile's) version that python-debian refuses
        bad = [v for v in (a, b) if not Version.re_valid_version.match(v)] or [a]
        raise SmithError("version '%s' is not a Debian version; the repository's metadata is "
                         "malformed or hostile" % printable(bad[0], 100)) from None
    return (va > vb) - (va < vb)


COMPARE: Dict[str, Callable[[str, str], int]] = {"deb": deb_compare, "rpm": evr_compare}


def satisfies(compare: Callable[[str, str], int], version: str, op: Optional[str],
              wanted: Optional[str]) -> bool:
    if op is None:
        return True
    c = compare(version, wanted)
    return {"<<": c < 0, "<=": c <= 0, "=": c == 0, ">=": c >= 0, ">>": c > 0}[op]


def sort_key(compare: Callable[[str, str], int]):
    return functools.cmp_to_key(compare)
