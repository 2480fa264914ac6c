"""`./pants generate-lockfiles --resolve=NAME` for smith_packages targets: each target is a
resolve (its `resolve` field, default its name), locked by `smith lock` against its repository.

Registered the way Pants' own backends register their resolves (see
pants/core/goals/generate_lockfiles.py): KnownUserResolveNamesRequest -> the names,
RequestedUserResolveNames -> one GenerateLockfile per name -> GenerateLockfileResult.
"""
import posixpath
from dataclasses import dataclass
from typing import Dict

from pants.core.goals.generate_lockfiles import (
    GenerateLockfile,
    GenerateLockfileResult,
    KnownUserResolveNames,
    KnownUserResolveNamesRequest,
    RequestedUserResolveNames,
    UserGenerateLockfiles,
    WrappedGenerateLockfile,
)
from pants.engine.fs import AddPrefix, Digest
from pants.engine.process import ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import AllTargets
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from smith.plugin.target_types.packages import SmithPackagesTarget
from smith.plugin.rules.util.packages import (
    RepositoryRequest,
    ResolvedRepository,
    SmithPackagesError,
    SmithPackagesFieldSet,
    repository_inputs,
)
from smith.plugin.rules.util.process import SmithProcess


@dataclass(frozen=True)
class GenerateSmithLockfile(GenerateLockfile):
    field_set: SmithPackagesFieldSet


class KnownSmithResolveNamesRequest(KnownUserResolveNamesRequest):
    pass


class RequestedSmithResolveNames(RequestedUserResolveNames):
    pass


@dataclass(frozen=True)
class SmithResolves:
    """resolve name -> its smith_packages field set (each name owned by exactly one target)."""

    by_name: FrozenDict  # str -> SmithPackagesFieldSet


@rule(desc="Finding smith_packages resolves", level=LogLevel.DEBUG)
async def smith_resolves(all_targets: AllTargets) -> SmithResolves:
    by_name: Dict[str, SmithPackagesFieldSet] = {}
    for target in all_targets:
        if not isinstance(target, SmithPackagesTarget):
            continue
        field_set = SmithPackagesFieldSet.create(target)
        other = by_name.setdefault(field_set.resolve_name, field_set)
        if other is not field_set:
            raise SmithPackagesError(
                f"smith_packages targets {other.address} and {field_set.address} both use the "
                f"resolve {field_set.resolve_name!r}; give one of them another `resolve`."
            )
    return SmithResolves(FrozenDict(by_name))


@rule
async def known_smith_resolves(_: KnownSmithResolveNamesRequest, resolves: SmithResolves) -> KnownUserResolveNames:
    return KnownUserResolveNames(
        names=tuple(sorted(resolves.by_name)),
        option_name="the `resolve` field of smith_packages targets",
        requested_resolve_names_cls=RequestedSmithResolveNames,
    )


@rule
async def requested_smith_lockfiles(requested: RequestedSmithResolveNames, resolves: SmithResolves) -> UserGenerateLockfiles:
    return UserGenerateLockfiles(
        GenerateSmithLockfile(
            resolve_name=name,
            lockfile_dest=resolves.by_name[name].lockfile_path,
            diff=False,
            field_set=resolves.by_name[name],
        )
        for name in requested
    )


@rule
async def wrap_smith_lockfile(request: GenerateSmithLockfile) -> WrappedGenerateLockfile:
    return WrappedGenerateLockfile(request)


@rule(desc="Locking smith packages", level=LogLevel.DEBUG)
async def generate_smith_lockfile(request: GenerateSmithLockfile) -> GenerateLockfileResult:
    field_set = request.field_set
    repo = await Get(ResolvedRepository, RepositoryRequest, field_set.repository_request())
    repo.canonical()  # a bad smith_repository is reported against its BUILD target first
    name = posixpath.basename(request.lockfile_dest)
    argv = ["lock", "--repo", "repo.json", "--output", name]
    for excluded in field_set.request()["exclude"]:
        argv += ["--exclude", excluded]
    argv += ["--", *field_set.packages.value]
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Locking {field_set.address} (resolve {request.resolve_name}) from {repo.address}",
            input_digest=await repository_inputs(repo),
            output_files=[name],
            # The repository changes under us: never reuse a cached lock.
            cache_scope=ProcessCacheScope.PER_SESSION,
            timeout_seconds=900,
        ),
    )
    directory = posixpath.dirname(request.lockfile_dest)
    placed = await Get(Digest, AddPrefix(result.output_digest, directory)) if directory else result.output_digest
    return GenerateLockfileResult(placed, request.resolve_name, request.lockfile_dest)


def rules():
    return [
        *collect_rules(),
        UnionRule(GenerateLockfile, GenerateSmithLockfile),
        UnionRule(KnownUserResolveNamesRequest, KnownSmithResolveNamesRequest),
        UnionRule(RequestedUserResolveNames, RequestedSmithResolveNames),
    ]
