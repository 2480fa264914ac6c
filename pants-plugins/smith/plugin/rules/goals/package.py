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

from smith.plugin.rules.util.command import SmithCommandFieldSet
from smith.plugin.rules.util.image import BuiltSmithImage, SmithImageSourceFieldSet, image_source_field_set
from smith.plugin.rules.util.toolbox import SmithToolboxFieldSet
from smith.plugin.target_types.image import SmithDockerArchiveField, SmithLayoutOutputPathField


@dataclass(frozen=True)
class SmithLayoutPackageFieldSet(PackageFieldSet):
    """Every target that yields an image (smith_image, smith_minimize, smith_remote_image): ONE
    member of Pants' PackageFieldSet union, which asks the SmithImageSourceFieldSet union for the
    image. One member per image kind here cost ~1 s of rule-graph solving each at every Pants
    start (each is solved again under every caller of that busy union); see bench/README.md."""

    required_fields = (SmithLayoutOutputPathField,)

    output_path: SmithLayoutOutputPathField
    docker_archive: SmithDockerArchiveField


def image_package(image: BuiltSmithImage, docker_archive: bool) -> BuiltPackage:
    """What `pants package` reports for a built image layout (and its docker-archive)."""
    artifacts = [BuiltPackageArtifact(image.path, extra_log_lines=(f"manifest {image.manifest_digest}",))]
    if docker_archive:
        artifacts.append(BuiltPackageArtifact(f"{image.path}.docker.tar"))
    return BuiltPackage(image.digest, tuple(artifacts))


@rule(desc="Packaging a smith image", level=LogLevel.DEBUG)
async def package_image_layout(
    field_set: SmithLayoutPackageFieldSet, union_membership: UnionMembership
) -> BuiltPackage:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(field_set.address, description_of_origin="<infallible>")
    )
    source = image_source_field_set(wrapped.target, union_membership, f"{field_set.address}")
    image = await Get(BuiltSmithImage, SmithImageSourceFieldSet, source)
    return image_package(image, field_set.docker_archive.value)


def rules():
    return [
        *collect_rules(),
        UnionRule(PackageFieldSet, SmithLayoutPackageFieldSet),
        UnionRule(PackageFieldSet, SmithToolboxFieldSet),
        UnionRule(PackageFieldSet, SmithCommandFieldSet),
    ]
