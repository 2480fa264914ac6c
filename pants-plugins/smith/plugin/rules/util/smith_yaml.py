"""smith_yaml: a target generator reading Oracle smith's `smith.yaml` (see smith/plugin/smith_yaml_spec.py).

`smith_yaml(name="cat")` next to a smith.yaml generates `:cat#image` (plus, for package builds,
`:cat#packages`, `:cat#binary`, `:cat#layer`); `pants package :cat#image` builds it.
"""
from pants.core.target_types import (
    TargetGeneratorSourcesHelperSourcesField,
    TargetGeneratorSourcesHelperTarget,
)
from pants.engine.addresses import Address
from pants.engine.fs import DigestContents, GlobMatchErrorBehavior, PathGlobs
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import GeneratedTargets, GenerateTargetsRequest
from pants.engine.unions import UnionMembership, UnionRule
from pants.util.logging import LogLevel

from smith.plugin import smith_yaml_spec
from smith.plugin.target_types.binary import SmithBinaryTarget
from smith.plugin.target_types.minimize import SmithMinimizeTarget
from smith.plugin.target_types.packages import SmithPackagesTarget
from smith.plugin.target_types.image import SmithImageTarget, SmithLayerTarget
from smith.plugin.target_types.smith_yaml import (
    SmithYamlLockfileField,
    SmithYamlRepositoryField,
    SmithYamlResolveField,
    SmithYamlSourceField,
    SmithYamlTarget,
)

_TARGETS = {t.alias: t for t in (SmithMinimizeTarget, SmithPackagesTarget, SmithBinaryTarget,
                                 SmithLayerTarget, SmithImageTarget)}


class GenerateFromSmithYamlRequest(GenerateTargetsRequest):
    generate_from = SmithYamlTarget


@rule(desc="Generating targets from smith.yaml", level=LogLevel.DEBUG)
async def generate_from_smith_yaml(
    request: GenerateFromSmithYamlRequest, union_membership: UnionMembership
) -> GeneratedTargets:
    generator = request.generator
    address = generator.address
    path = generator[SmithYamlSourceField].file_path
    contents = await Get(
        DigestContents,
        PathGlobs([path], glob_match_error_behavior=GlobMatchErrorBehavior.error,
                  description_of_origin=f"{address}'s field `source`"),
    )
    where = f"{path} (of {address})"
    spec = smith_yaml_spec.load(contents[0].content.decode("utf-8", "replace"), where)

    def address_of(name: str) -> str:
        return address.create_generated(name).spec

    resolve = generator[SmithYamlResolveField].value or address.target_name
    specs = smith_yaml_spec.generate(
        spec, where, address_of, generator[SmithYamlRepositoryField].for_packages(), resolve,
        generator[SmithYamlLockfileField].value,
    )
    # The smith.yaml itself, so `--changed-since` and dependees see it.
    rel = generator[SmithYamlSourceField].value
    source_tgt = TargetGeneratorSourcesHelperTarget(
        {TargetGeneratorSourcesHelperSourcesField.alias: rel},
        Address(address.spec_path, target_name=address.target_name, relative_file_path=rel),
        union_membership,
    )
    targets = [source_tgt]
    # dist/<dir.with.dots>/<smith_yaml name>, not the generated name `image`.
    name = address.target_name
    output_path = f"{address.spec_path.replace('/', '.')}/{name}" if address.spec_path else name
    for g in specs:
        fields = {**request.template, **g.fields}
        if g.name == "image":
            fields["output_path"] = output_path
        targets.append(_TARGETS[g.alias](fields, address.create_generated(g.name), union_membership))
    return GeneratedTargets(generator, targets)


def rules():
    return [*collect_rules(), UnionRule(GenerateTargetsRequest, GenerateFromSmithYamlRequest)]
