"""smith_binary -> a tree tar of one program's ELF closure, computed by `smith closure`."""
from dataclasses import dataclass

from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.engine.fs import AddPrefix, Digest, MergeDigests, RemovePrefix
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    HydratedSources,
    HydrateSourcesRequest,
    SourcesField,
    Targets,
    UnparsedAddressInputs,
)
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from smith.plugin.target_types.binary import (
    SmithBinaryEnvField,
    SmithBinaryExtraLibsField,
    SmithBinaryNssField,
    SmithBinaryPathField,
    SmithBinaryPathsField,
    SmithBinaryRootField,
    SmithBinaryUserField,
)
from smith.plugin.rules.util.process import SmithProcess
from smith import platforms as platforms
from smith.plugin.rules.util.tree import SmithRootFieldSet, SmithTree, SmithTreeFieldSet, TreeForPlatform


class SmithBinaryError(ValueError):
    pass


@dataclass(frozen=True)
class SmithBinaryFieldSet(SmithTreeFieldSet):
    required_fields = (SmithBinaryPathField,)

    path: SmithBinaryPathField
    root: SmithBinaryRootField
    nss: SmithBinaryNssField
    user: SmithBinaryUserField
    extra_libs: SmithBinaryExtraLibsField
    paths: SmithBinaryPathsField
    env: SmithBinaryEnvField


@dataclass(frozen=True)
class BinaryForPlatform:
    field_set: SmithBinaryFieldSet
    platform: str


@rule(desc="Tracing an ELF closure", level=LogLevel.DEBUG)
async def binary_closure(field_set: SmithBinaryFieldSet) -> SmithTree:
    return await Get(SmithTree, BinaryForPlatform(field_set, platforms.DEFAULT))


@rule(desc="Tracing an ELF closure for a platform", level=LogLevel.DEBUG)
async def binary_closure_for_platform(request: BinaryForPlatform) -> SmithTree:
    field_set, platform = request.field_set, request.platform
    address = field_set.address
    if not field_set.path.value.startswith("/"):
        raise SmithBinaryError(f"{address}: `path` must be absolute inside the root, got {field_set.path.value!r}")
    roots = await Get(Targets, UnparsedAddressInputs, field_set.root.to_unparsed_address_inputs())
    if not roots:
        raise SmithBinaryError(f"{address}: `root` is empty; name a smith_packages target or files targets.")
    tree_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(SmithRootFieldSet, roots))
    tree_addresses = {fs.address for fs in tree_sets.field_sets}
    file_targets = [t for t in roots if t.address not in tree_addresses]
    for t in file_targets:
        if not (t.has_field(FileSourceField) or t.has_field(ResourceSourceField)):
            raise SmithBinaryError(
                f"{address}: `root` target {t.address} is a `{t.alias}`, which yields no file tree; "
                "use smith_packages, smith_minimize or file/files targets."
            )
    if len(tree_sets.field_sets) > 1 or (tree_sets.field_sets and file_targets):
        raise SmithBinaryError(
            f"{address}: `root` must be one tree target, or only file targets "
            f"(got {', '.join(str(t.address) for t in roots)})."
        )

    argv = ["closure"]
    origins = ()
    if tree_sets.field_sets:
        tree = await Get(SmithTree, TreeForPlatform(tree_sets.field_sets[0], platform))
        origins = tree.origins  # the closure's files come from the root's packages
        input_digest = await Get(Digest, AddPrefix(tree.digest, "in"))
        argv += ["--root-tar", f"in/{tree.path}"]
    else:
        hydrated = await MultiGet(
            Get(HydratedSources, HydrateSourcesRequest(
                t[SourcesField], for_sources_types=(FileSourceField, ResourceSourceField)))
            for t in file_targets
        )
        relocated = await MultiGet(
            Get(Digest, RemovePrefix(h.snapshot.digest, t.address.spec_path))
            if t.address.spec_path else Get(Digest, MergeDigests([h.snapshot.digest]))
            for t, h in zip(file_targets, hydrated)
        )
        input_digest = await Get(Digest, AddPrefix(await Get(Digest, MergeDigests(relocated)), "root"))
        argv += ["--root", "root"]
    if field_set.nss.value:
        argv += ["--nss", "--user", "%s:%d:%d" % field_set.user.parsed(address)]
    for glob in field_set.extra_libs.value or ():
        argv += ["--extra-lib", glob]
    for glob in field_set.paths.value or ():
        argv += ["--keep", glob]
    for k, v in sorted((field_set.env.value or {}).items()):
        argv += ["--env", f"{k}={v}"]
    if platform != platforms.DEFAULT:  # amd64 keeps its argv (and cache keys)
        argv += ["--platform", platform]
    argv += ["--output-tar", "closure.tar", field_set.path.value]

    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Tracing the ELF closure of {field_set.path.value} ({address}){platforms.suffix(platform)}",
            input_digest=input_digest,
            output_files=["closure.tar"],
        ),
    )
    return SmithTree(result.output_digest, "closure.tar", origins)


def rules():
    return [*collect_rules(), UnionRule(SmithTreeFieldSet, SmithBinaryFieldSet)]
