"""File trees passed between smith steps as "tree tars" (uncompressed, names without a leading /).

Targets that yield a tree (smith_binary, smith_packages, ...) register a `SmithTreeFieldSet`
member and a rule `member -> SmithTree`; a smith_layer takes every tree among its dependencies.
"""
from dataclasses import dataclass

from pants.engine.fs import Digest
from pants.engine.target import FieldSet
from pants.engine.unions import union


@union
@dataclass(frozen=True)
class SmithTreeFieldSet(FieldSet):
    """A target that yields a file tree."""


@dataclass(frozen=True)
class SmithTree:
    digest: Digest  # holds exactly one file: `path`
    path: str
