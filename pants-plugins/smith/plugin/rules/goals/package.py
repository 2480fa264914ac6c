"""`pants package`: which smith targets it builds, and what it reports for each.

The builders live in rules/util/ (an image source -> BuiltSmithImage, a toolbox, a zipapp); this
module only registers them with the goal and turns a built image into its dist/ artifacts.
"""
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from smith.plugin.rules.util.command import SmithCommandFieldSet
from smith.plugin.rules.util.image import BuiltSmithImage, SmithImageFieldSet
from smith.plugin.rules.util.minimize import SmithMinimizeFieldSet
from smith.plugin.rules.util.remote_image import SmithRemoteImageFieldSet
from smith.plugin.rules.util.toolbox import SmithToolboxFieldSet


def image_package(image: BuiltSmithImage, docker_archive: bool) -> BuiltPackage:
    """What `pants package` reports for a built image layout (and its docker-archive)."""
    artifacts = [BuiltPackageArtifact(image.path, extra_log_lines=(f"manifest {image.manifest_digest}",))]
    if docker_archive:
        artifacts.append(BuiltPackageArtifact(f"{image.path}.docker.tar"))
    return BuiltPackage(image.digest, tuple(artifacts))


@rule(desc="Packaging a smith image", level=LogLevel.DEBUG)
async def package_image(field_set: SmithImageFieldSet) -> BuiltPackage:
    image = await Get(BuiltSmithImage, SmithImageFieldSet, field_set)
    return image_package(image, field_set.docker_archive.value)


@rule(desc="Packaging a minimized image", level=LogLevel.DEBUG)
async def package_minimized(field_set: SmithMinimizeFieldSet) -> BuiltPackage:
    image = await Get(BuiltSmithImage, SmithMinimizeFieldSet, field_set)
    return image_package(image, field_set.docker_archive.value)


@rule(desc="Packaging a remote image", level=LogLevel.DEBUG)
async def package_remote_image(field_set: SmithRemoteImageFieldSet) -> BuiltPackage:
    image = await Get(BuiltSmithImage, SmithRemoteImageFieldSet, field_set)
    return image_package(image, False)


def rules():
    return [
        *collect_rules(),
        UnionRule(PackageFieldSet, SmithImageFieldSet),
        UnionRule(PackageFieldSet, SmithMinimizeFieldSet),
        UnionRule(PackageFieldSet, SmithRemoteImageFieldSet),
        UnionRule(PackageFieldSet, SmithToolboxFieldSet),
        UnionRule(PackageFieldSet, SmithCommandFieldSet),
    ]
