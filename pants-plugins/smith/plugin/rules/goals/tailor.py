"""`./pants tailor` (and `tailor --check` in CI): every lockfile of a smith_packages target is owned
by a smith_lockfile target, so the graph sees it (a lockfile change then marks the images built
from it as changed).

A lockfile counts as "of a smith_packages target" when it is some target's `lockfile` or a
`*.lock.json` in a directory holding smith_packages targets. Owned means by a smith_lockfile
target: the repository's catch-all `files` targets do not count. For each directory with unowned
lockfiles it proposes `smith_lockfiles(name="lockfiles")` and logs which file wants it.
"""
import fnmatch
import logging
import posixpath
from dataclasses import dataclass
from typing import Dict, List

from pants.core.goals.tailor import PutativeTarget, PutativeTargets, PutativeTargetsRequest
from pants.engine.fs import PathGlobs, Paths
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import AllTargets
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from smith.plugin.target_types.packages import (
    SmithLockfileSourceField,
    SmithLockfilesSourcesField,
    SmithLockfilesTarget,
    SmithLockfileTarget,
    SmithPackagesLockfileField,
    SmithPackagesResolveField,
    SmithPackagesTarget,
)

logger = logging.getLogger(__name__)

_DEFAULT_GLOB = SmithLockfilesSourcesField.default[0]  # *.lock.json


@dataclass(frozen=True)
class PutativeSmithLockfilesRequest(PutativeTargetsRequest):
    pass


@rule(desc="Finding smith lockfiles that no smith_lockfile target owns", level=LogLevel.DEBUG)
async def find_unowned_lockfiles(request: PutativeSmithLockfilesRequest, all_targets: AllTargets) -> PutativeTargets:
    searched = set(request.dirs)
    packages = [t for t in all_targets if isinstance(t, SmithPackagesTarget) and t.address.spec_path in searched]
    owned = {t[SmithLockfileSourceField].file_path for t in all_targets if isinstance(t, SmithLockfileTarget)}
    reader: Dict[str, str] = {}  # lockfile -> the smith_packages target that reads it (for the message)
    for t in packages:
        path = t[SmithPackagesLockfileField].path_for(t.address, t[SmithPackagesResolveField].name_for(t.address))
        reader.setdefault(path, str(t.address))
    globs = sorted({posixpath.join(t.address.spec_path, _DEFAULT_GLOB) for t in packages} | set(reader))
    existing = await Get(Paths, PathGlobs(globs))
    unowned_by_dir: Dict[str, List[str]] = {}
    for path in sorted(set(existing.files) - owned):
        unowned_by_dir.setdefault(posixpath.dirname(path), []).append(path)
    putative = []
    for directory, paths in sorted(unowned_by_dir.items()):
        names = tuple(posixpath.basename(p) for p in paths)
        kwargs = {} if all(fnmatch.fnmatchcase(n, _DEFAULT_GLOB) for n in names) else {"sources": names}
        for path in paths:
            used_by = f" (the lockfile of {reader[path]})" if path in reader else ""
            logger.info(
                f"{path}{used_by} is owned by no smith_lockfile target, so the build graph cannot "
                f"see it: add `smith_lockfiles(name=\"lockfiles\")` to {directory or '.'}/BUILD "
                "(`./pants tailor` does)."
            )
        putative.append(
            PutativeTarget.for_target_type(SmithLockfilesTarget, directory, "lockfiles", paths, kwargs=kwargs)
        )
    return PutativeTargets(putative)


def rules():
    return [*collect_rules(), UnionRule(PutativeTargetsRequest, PutativeSmithLockfilesRequest)]
