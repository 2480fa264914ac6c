"""`pants package`: which smith targets it builds, and what it reports for each.

The builders live in rules/util/ (an image source -> BuiltSmithImage, a toolbox, a zipapp); this
module only registers them with the goal and turns a built image into its dist/ artifacts.
"""
from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionMembership, UnionRule
from pants.util.logging import LogLevel

from smith.plugin.rules.util.command import BuiltZipapp, SmithCommandFieldSet
from smith.plugin.rules.util.image import BuiltSmithImage, SmithImageSourceFieldSet, image_source_field_set
from smith.plugin.rules.util.toolbox import BuiltToolbox, SmithToolboxFieldSet
from smith.plugin.target_types.fields import SmithPackageOutputPathField
from smith.plugin.target_types.image import SmithDockerArchiveField


@dataclass(frozen=True)
class SmithPackageFieldSet(PackageFieldSet):
    """Every target `pants package` builds with smith (smith_image, smith_minimize,
    smith_remote_image, smith_toolbox, smith_command): ONE member of Pants' PackageFieldSet union,
    which hands each kind to its builder. Each member of that union costs every Pants start ~25k
    rule-graph solver steps (~0.25 s here) whatever its rule does: see bench/README.md (issue 16)."""

    required_fields = (SmithPackageOutputPathField,)

    output_path: SmithPackageOutputPathField
    docker_archive: SmithDockerArchiveField


def image_package(image: BuiltSmithImage, docker_archive: bool) -> BuiltPackage:
    """What `pants package` reports for a built image layout (and its docker-archive)."""
    artifacts = [BuiltPackageArtifact(image.path, extra_log_lines=(f"manifest {image.manifest_digest}",))]
    if docker_archive:
        artifacts.append(BuiltPackageArtifact(f"{image.path}.docker.tar"))
    return BuiltPackage(image.digest, tuple(artifacts))


@rule(desc="Packaging a smith target", level=LogLevel.DEBUG)
async def package_smith_target(field_set: SmithPackageFieldSet, union_membership: UnionMembership) -> BuiltPackage:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(field_set.address, description_of_origin="<infallible>")
    )
    target = wrapped.target
    if SmithToolboxFieldSet.is_applicable(target):
        toolbox = await Get(BuiltToolbox, SmithToolboxFieldSet, SmithToolboxFieldSet.create(target))
        return BuiltPackage(toolbox.digest, (BuiltPackageArtifact(toolbox.path),))
    if SmithCommandFieldSet.is_applicable(target):
        zipapp = await Get(BuiltZipapp, SmithCommandFieldSet, SmithCommandFieldSet.create(target))
        return BuiltPackage(zipapp.digest, (BuiltPackageArtifact(zipapp.path),))
    source = image_source_field_set(target, union_membership, f"{field_set.address}")
    image = await Get(BuiltSmithImage, SmithImageSourceFieldSet, source)
    return image_package(image, field_set.docker_archive.value)


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, SmithPackageFieldSet)]
