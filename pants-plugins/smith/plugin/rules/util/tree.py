"""File trees passed between smith steps as "tree tars" (uncompressed, names without a leading /).

Targets that yield a tree (smith_binary, smith_packages, ...) register a `SmithTreeFieldSet`
member and a rule `member -> SmithTree`; a smith_layer takes every tree among its dependencies.
"""
from dataclasses import dataclass
from typing import Tuple

from pants.engine.addresses import Address
from pants.engine.fs import Digest
from pants.engine.target import FieldSet
from pants.engine.environment import EnvironmentName
from pants.engine.unions import union


# Members run Processes, so the union passes the environment through (as PackageFieldSet does).
@union(in_scope_types=[EnvironmentName])
@dataclass(frozen=True)
class SmithTreeFieldSet(FieldSet):
    """A target that yields a file tree."""


@dataclass(frozen=True)
class PackageTree:
    """One package's own extracted tree (what an SBOM maps files back to)."""

    name: str
    digest: Digest  # holds `path`
    path: str


@dataclass(frozen=True)
class SmithPackagesOrigin:
    """Where the files of a tree came from: one smith_packages lockfile and its packages' trees.
    Carried forward by every step that passes package files on (closure, layer), so an image
    knows its packages without walking the graph back."""

    address: Address
    resolve: str
    lock_digest: Digest  # holds `lock_path`
    lock_path: str
    packages: Tuple[PackageTree, ...]
    architecture: str = ""  # the lock's architecture these packages are for ("": the only one)


@dataclass(frozen=True)
class SmithTree:
    digest: Digest  # holds exactly one file: `path`
    path: str
    origins: Tuple[SmithPackagesOrigin, ...] = ()


def merge_origins(*groups: Tuple[SmithPackagesOrigin, ...]) -> Tuple[SmithPackagesOrigin, ...]:
    """Origins of several trees, each smith_packages once, in address order."""
    by_address = {}
    for group in groups:
        for origin in group:
            by_address.setdefault(origin.address, origin)
    return tuple(by_address[a] for a in sorted(by_address))


@union(in_scope_types=[EnvironmentName])
@dataclass(frozen=True)
class SmithRootFieldSet(FieldSet):
    """A tree target usable as a `smith_binary` root (not smith_binary itself: no rule cycles)."""


@dataclass(frozen=True)
class TreeForPlatform:
    """The tree of a SmithTreeFieldSet / SmithRootFieldSet member built for one image platform
    ("linux/arm64"): each platform's Processes are keyed and cached apart (rules/util/platform.py)."""

    field_set: FieldSet
    platform: str
