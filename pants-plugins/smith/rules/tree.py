"""File trees passed between smith steps as "tree tars" (uncompressed, names without a leading /).

Targets that yield a tree (smith_binary, smith_packages, ...) register a `SmithTreeFieldSet`
member and a rule `member -> SmithTree`; a smith_layer takes every tree among its dependencies.
"""
from dataclasses import dataclass

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
class SmithTree:
    digest: Digest  # holds exactly one file: `path`
    path: str


@union(in_scope_types=[EnvironmentName])
@dataclass(frozen=True)
class SmithRootFieldSet(FieldSet):
    """A tree target usable as a `smith_binary` root (not smith_binary itself: no rule cycles)."""
