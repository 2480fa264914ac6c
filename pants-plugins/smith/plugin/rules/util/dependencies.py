"""Inputs of smith targets that are not addresses in a dependencies-like field, inferred into
`dependencies` so that `./pants dependencies`, `dependents`, `filedeps`, `peek` and
`--changed-since --changed-dependents` see them:

- a smith_packages target depends on the `smith_lockfile` target owning its lockfile (the way a
  python_requirement depends on its resolve's lockfile);
- a smith_minimize target depends on its `image`: the target it names, or the owners of the
  image files at the path it names.
"""
import os
from dataclasses import dataclass

from pants.engine.addresses import Addresses
from pants.engine.fs import GlobMatchErrorBehavior, PathGlobs, Paths
from pants.engine.internals.graph import Owners, OwnersRequest
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
    Targets,
    UnparsedAddressInputs,
)
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from smith.plugin.target_types.minimize import SmithMinimizeImageField, is_address
from smith.plugin.target_types.packages import (
    SmithLockfileTarget,
    SmithPackagesLockfileField,
    SmithPackagesPackagesField,
    SmithPackagesResolveField,
)


class SmithDependencyError(ValueError):
    pass


# ----------------------------------------------------------------------------------------------
# smith_packages -> its smith_lockfile
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmithPackagesLockfileInferenceFieldSet(FieldSet):
    required_fields = (SmithPackagesPackagesField,)

    resolve: SmithPackagesResolveField
    lockfile: SmithPackagesLockfileField

    @property
    def lockfile_path(self) -> str:
        return self.lockfile.path_for(self.address, self.resolve.name_for(self.address))


class InferSmithPackagesLockfile(InferDependenciesRequest):
    infer_from = SmithPackagesLockfileInferenceFieldSet


@rule(desc="Inferring the lockfile of a smith_packages target", level=LogLevel.DEBUG)
async def infer_lockfile(request: InferSmithPackagesLockfile) -> InferredDependencies:
    field_set = request.field_set
    path = field_set.lockfile_path
    exists = await Get(Paths, PathGlobs([path], glob_match_error_behavior=GlobMatchErrorBehavior.ignore))
    if not exists.files:
        return InferredDependencies([])  # not generated yet: a build says to run generate-lockfiles
    owners = await Get(Owners, OwnersRequest((path,)))
    lockfiles = [t for t in await Get(Targets, Addresses(owners)) if isinstance(t, SmithLockfileTarget)]
    if len(lockfiles) == 1:
        return InferredDependencies([lockfiles[0].address])
    if len(lockfiles) > 1:
        raise SmithDependencyError(
            f"{field_set.address}: its lockfile {path} is owned by several smith_lockfile targets "
            f"({', '.join(sorted(str(t.address) for t in lockfiles))}); keep one."
        )
    directory = os.path.dirname(path) or "."
    raise SmithDependencyError(
        f"{field_set.address}: its lockfile {path} is owned by no smith_lockfile target, so "
        "a change to it would not reach the images built from it. Add "
        f"`smith_lockfiles(name=\"lockfiles\")` to {directory}/BUILD (or "
        f"`smith_lockfile(name=..., source=\"{os.path.basename(path)}\")`)."
    )


# ----------------------------------------------------------------------------------------------
# smith_minimize -> its image
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmithMinimizeImageInferenceFieldSet(FieldSet):
    required_fields = (SmithMinimizeImageField,)

    image: SmithMinimizeImageField


class InferSmithMinimizeImage(InferDependenciesRequest):
    infer_from = SmithMinimizeImageInferenceFieldSet


@rule(desc="Inferring the image of a smith_minimize target", level=LogLevel.DEBUG)
async def infer_minimize_image(request: InferSmithMinimizeImage) -> InferredDependencies:
    field_set = request.field_set
    address = field_set.address
    value = field_set.image.value.rstrip("/")
    if not is_address(value):
        path = os.path.normpath(os.path.join(address.spec_path, value))
        files = await Get(
            Paths, PathGlobs([path, f"{path}/**"], glob_match_error_behavior=GlobMatchErrorBehavior.ignore)
        )
        if files.files:
            # The targets owning the image's files (none: the path is an input Pants cannot see).
            return InferredDependencies(await Get(Owners, OwnersRequest(tuple(files.files))))
    addresses = await Get(
        Addresses,
        UnparsedAddressInputs(
            [value], owning_address=address, description_of_origin=f"the `image` field of {address}"
        ),
    )
    return InferredDependencies(addresses)


def rules():
    return [
        *collect_rules(),
        UnionRule(InferDependenciesRequest, InferSmithPackagesLockfile),
        UnionRule(InferDependenciesRequest, InferSmithMinimizeImage),
    ]
