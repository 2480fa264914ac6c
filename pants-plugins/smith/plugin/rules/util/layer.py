"""smith_layer -> one deterministic layer (layer.tar.gz + layer.json), built by `smith layer`."""
from dataclasses import dataclass
from typing import Tuple

from pants.core.goals.package import BuiltPackage, EnvironmentAwarePackageRequest, PackageFieldSet
from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.engine.fs import AddPrefix, Digest, DigestSubset, MergeDigests, PathGlobs, RemovePrefix
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    DependenciesRequest,
    FieldSet,
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    HydratedSources,
    HydrateSourcesRequest,
    SourcesField,
    Targets,
)
from pants.util.logging import LogLevel

from smith.plugin.rules.util.bytecode import LayerBytecode, LayerBytecodeRequest
from smith.plugin.rules.util.process import SmithProcess
from smith import platforms as oci_platform
from smith.plugin.rules.util.tree import (
    SmithPackagesOrigin,
    SmithTree,
    SmithTreeFieldSet,
    TreeForPlatform,
    merge_origins,
)
from pants.engine.process import ProcessResult
from smith.plugin.target_types.bytecode import SmithPythonBytecodeField, SmithPythonInterpreterField
from smith.plugin.target_types.image import (
    SmithKeepSpecialField,
    SmithLayerDependenciesField,
    SmithLayerExcludesField,
    SmithLayerPlatformsField,
    SmithLayerPrefixField,
    SmithOwnerField,
)


@dataclass(frozen=True)
class SmithLayerFieldSet(FieldSet):
    required_fields = (SmithLayerDependenciesField, SmithLayerPrefixField)

    dependencies: SmithLayerDependenciesField
    prefix: SmithLayerPrefixField
    excludes: SmithLayerExcludesField
    owner: SmithOwnerField
    keep_special: SmithKeepSpecialField
    python_bytecode: SmithPythonBytecodeField
    python_interpreter: SmithPythonInterpreterField
    platforms: SmithLayerPlatformsField

    def for_platform(self, platform: str) -> bool:
        """Does this layer belong to the image built for `platform`?"""
        return self.platforms.value is None or platform in {oci_platform.get(p).name for p in self.platforms.value}


@dataclass(frozen=True)
class BuiltSmithLayer:
    digest: Digest  # `layer.tar.gz` and `layer.json` at its root
    origins: Tuple[SmithPackagesOrigin, ...] = ()  # the smith_packages its trees came from


def parse_owner(value: str, what: str) -> "tuple[int, int]":
    try:
        uid, gid = value.split(":")
        return int(uid), int(gid)
    except ValueError:
        raise ValueError(f"{what}: expected numeric `UID:GID` like `10:10`, got {value!r}")


def excluded_file_globs(prefix: str, excludes) -> Tuple[str, ...]:
    """`!` globs (relative to the layer's files) of the `excludes` that name one path under
    `prefix` literally: that path and everything below it. Wildcard excludes stay with the
    Process alone (fnmatch's `*` crosses `/`, a Pants glob's does not); it applies them all."""
    base = prefix.strip("/")
    out = []
    for raw in excludes:
        path = raw.strip("/")
        if any(c in raw for c in "*?[") or not path:
            continue
        if base and not path.startswith(base + "/"):
            continue
        rel = path[len(base) + 1:] if base else path
        out += [f"!{rel}", f"!{rel}/**"]
    return tuple(out)


def _is_file_like(tgt) -> bool:
    return tgt.has_field(FileSourceField) or tgt.has_field(ResourceSourceField)


@dataclass(frozen=True)
class LayerForPlatform:
    """A smith_layer built for one image platform: its trees are that platform's."""

    field_set: SmithLayerFieldSet
    platform: str


@rule(desc="Building a smith layer", level=LogLevel.DEBUG)
async def build_layer(field_set: SmithLayerFieldSet) -> BuiltSmithLayer:
    return await Get(BuiltSmithLayer, LayerForPlatform(field_set, oci_platform.DEFAULT))


@rule(desc="Building a smith layer for a platform", level=LogLevel.DEBUG)
async def build_layer_for_platform(request: LayerForPlatform) -> BuiltSmithLayer:
    field_set = request.field_set
    address = field_set.address
    targets = await Get(Targets, DependenciesRequest(field_set.dependencies))
    tree_sets, package_sets = await MultiGet(
        Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(SmithTreeFieldSet, targets)),
        Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, targets)),
    )
    tree_addresses = {fs.address for fs in tree_sets.field_sets}
    file_targets = [t for t in targets if _is_file_like(t)]
    package_field_sets = [fs for fs in package_sets.field_sets if fs.address not in tree_addresses]

    hydrated = await MultiGet(
        Get(
            HydratedSources,
            HydrateSourcesRequest(
                t[SourcesField],
                for_sources_types=(FileSourceField, ResourceSourceField),
                enable_codegen=True,
            ),
        )
        for t in file_targets
    )
    # Each file lands at its path relative to the directory of the target that owns it.
    relocated = await MultiGet(
        Get(Digest, RemovePrefix(h.snapshot.digest, t.address.spec_path))
        if t.address.spec_path
        else Get(Digest, MergeDigests([h.snapshot.digest]))
        for t, h in zip(file_targets, hydrated)
    )
    trees = await MultiGet(Get(SmithTree, TreeForPlatform(fs, request.platform)) for fs in tree_sets.field_sets)
    packages = await MultiGet(
        Get(BuiltPackage, EnvironmentAwarePackageRequest(fs)) for fs in package_field_sets
    )

    files_digest = await Get(Digest, MergeDigests([*relocated, *(p.digest for p in packages)]))
    dropped = excluded_file_globs(field_set.prefix.value, field_set.excludes.value or ())
    if dropped:  # not in the Process's input: a change there (e.g. an app's code) rebuilds nothing
        files_digest = await Get(Digest, DigestSubset(files_digest, PathGlobs(["**", *dropped])))
    tree_digests = await MultiGet(
        Get(Digest, AddPrefix(t.digest, f"in/trees/{i}")) for i, t in enumerate(trees)
    )
    in_files = await Get(Digest, AddPrefix(files_digest, "in/files"))
    input_digest = await Get(Digest, MergeDigests([in_files, *tree_digests]))

    try:
        uid, gid = parse_owner(field_set.owner.value, f"{address}: field `owner`")
    except ValueError as e:
        raise ValueError(str(e)) from None
    argv = ["layer", "--output", "out", "--uid", str(uid), "--gid", str(gid)]
    if field_set.keep_special.value:
        argv.append("--keep-special")
    for glob in field_set.excludes.value or ():
        argv += ["--exclude", glob]
    if file_targets or packages:
        argv += ["--dir", f"{field_set.prefix.value}=in/files"]
    for i, tree in enumerate(trees):
        argv += ["--tar", f"in/trees/{i}/{tree.path}"]
    # .pyc for the .py files of these very sources, when the layer asks (rules/util/bytecode.py)
    bytecode = await Get(LayerBytecode, LayerBytecodeRequest.of(field_set, request.platform, input_digest, argv))
    if bytecode.path:
        pyc = await Get(Digest, AddPrefix(bytecode.digest, "in/pyc"))
        input_digest = await Get(Digest, MergeDigests([input_digest, pyc]))
        argv += ["--tar", f"in/pyc/{bytecode.path}"]

    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Building layer {address}",
            input_digest=input_digest,
            output_directories=["out"],
        ),
    )
    return BuiltSmithLayer(
        await Get(Digest, RemovePrefix(result.output_digest, "out")),
        merge_origins(*(t.origins for t in trees)),
    )


def rules():
    return collect_rules()
