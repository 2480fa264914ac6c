"""smith_image -> an OCI image layout in dist/, assembled by `smith image` from built layers."""
import json
from dataclasses import dataclass

from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.environment import EnvironmentName
from pants.engine.target import FieldSet, Target, Targets, UnparsedAddressInputs
from pants.engine.unions import UnionMembership, UnionRule, union
from pants.util.logging import LogLevel

from smith import platforms as oci_platform
from smith.plugin.rules.util.layer import BuiltSmithLayer, LayerForPlatform, SmithLayerFieldSet
from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.rules.util.sbom import ImageSbomRequest, ImageSboms
from smith.plugin.rules.util.tree import merge_origins
from smith.plugin.target_types.image import (
    SmithAnnotationsField,
    SmithCmdField,
    SmithCompressionField,
    SmithDockerArchiveField,
    SmithEntrypointField,
    SmithEnvField,
    SmithExposedPortsField,
    SmithImageBaseField,
    SmithImageLayersField,
    SmithImageOutputPathField,
    SmithImagePlatformsField,
    SmithLabelsField,
    SmithLayerTarget,
    SmithSkeletonField,
    SmithTagField,
    SmithUserField,
    SmithVolumesField,
    SmithWorkdirField,
)


# Anything that yields an image (smith_image, smith_remote_image): a member with a rule
# `member -> BuiltSmithImage` is usable as `base` (and as smith_minimize's `image`). Members run
# Processes, so the union passes the environment through.
@union(in_scope_types=[EnvironmentName])
@dataclass(frozen=True)
class SmithImageSourceFieldSet(FieldSet):
    """A target that yields an OCI image layout (BuiltSmithImage)."""


def image_source_field_set(
    target: Target, union_membership: UnionMembership, what: str
) -> SmithImageSourceFieldSet:
    """The SmithImageSourceFieldSet member for `target`; `what` names the field asking, for errors."""
    for member in union_membership.get(SmithImageSourceFieldSet):
        if member.is_applicable(target):
            return member.create(target)
    raise SmithTargetError(
        f"{what}: {target.address} is a `{target.alias}`, not an image; name a smith_image "
        "or smith_remote_image."
    )


@dataclass(frozen=True)
class SmithImageFieldSet(FieldSet):
    required_fields = (SmithImageLayersField,)

    layers: SmithImageLayersField
    platforms: SmithImagePlatformsField
    base: SmithImageBaseField
    entrypoint: SmithEntrypointField
    cmd: SmithCmdField
    env: SmithEnvField
    user: SmithUserField
    workdir: SmithWorkdirField
    labels: SmithLabelsField
    annotations: SmithAnnotationsField
    exposed_ports: SmithExposedPortsField
    volumes: SmithVolumesField
    skeleton: SmithSkeletonField
    compression: SmithCompressionField
    tag: SmithTagField
    docker_archive: SmithDockerArchiveField
    output_path: SmithImageOutputPathField

    def config_json(self) -> bytes:
        def opt_list(field):
            return list(field.value) if field.value is not None else None

        config = {
            "entrypoint": opt_list(self.entrypoint),
            "cmd": opt_list(self.cmd),
            "env": dict(self.env.value or {}),
            # The config's User is UID:GID (the field's NAME: names the user for nss and the skeleton).
            "user": "%d:%d" % self.user.uid_gid(self.address),
            "workdir": self.workdir.value,
            "labels": dict(self.labels.value or {}),
            "annotations": dict(self.annotations.value or {}),
            "exposed_ports": list(self.exposed_ports.value or ()),
            "volumes": list(self.volumes.value or ()),
        }
        config = {k: v for k, v in config.items() if v is not None}
        return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class BuiltSmithImage:
    """An OCI image layout: the digest holds the layout's files under `path`."""

    digest: Digest
    path: str
    manifest_digest: str


class SmithTargetError(ValueError):
    pass


@dataclass(frozen=True)
class ImageForPlatform:
    """One platform's image of a smith_image: a plain one-manifest layout."""

    field_set: SmithImageFieldSet
    platform: str


@rule(desc="Assembling a smith image", level=LogLevel.DEBUG)
async def build_image(field_set: SmithImageFieldSet) -> BuiltSmithImage:
    """One platform: its image as it is. Several: each platform's image, joined by
    `smith image-index` into one layout whose entry is an OCI image index."""
    address = field_set.address
    wanted = field_set.platforms.value
    if len(wanted) == 1:
        return await Get(BuiltSmithImage, ImageForPlatform(field_set, wanted[0]))
    if field_set.docker_archive.value:
        raise SmithTargetError(
            f"{address}: `docker_archive=True` needs one platform (a docker archive holds one image), "
            f"but `platforms` lists {len(wanted)}; build a one-platform smith_image for the archive."
        )
    images = await MultiGet(Get(BuiltSmithImage, ImageForPlatform(field_set, p)) for p in wanted)
    placed = await MultiGet(
        Get(Digest, AddPrefix(img.digest, f"platforms/{i}")) for i, img in enumerate(images)
    )
    out = field_set.output_path.value_or_default(file_ending=None)
    argv = ["image-index", "--output", out, "--tag", field_set.tag.value]
    for i, (p, img) in enumerate(zip(wanted, images)):
        argv += ["--platform-layout", f"{p}=platforms/{i}/{img.path}"]
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Indexing image {address} ({', '.join(wanted)})",
            input_digest=await Get(Digest, MergeDigests(placed)),
            output_directories=[out],
        ),
    )
    return BuiltSmithImage(result.output_digest, out, result.stdout.decode().strip())


@rule(desc="Assembling a smith image for a platform", level=LogLevel.DEBUG)
async def build_image_for_platform(
    request: ImageForPlatform, union_membership: UnionMembership
) -> BuiltSmithImage:
    field_set, platform = request.field_set, request.platform
    address = field_set.address
    layer_targets, base_targets = await MultiGet(
        Get(Targets, UnparsedAddressInputs, field_set.layers.to_unparsed_address_inputs()),
        Get(Targets, UnparsedAddressInputs, field_set.base.to_unparsed_address_inputs()),
    )
    for t in layer_targets:
        if not isinstance(t, SmithLayerTarget):
            raise SmithTargetError(
                f"{address}: `layers` must name smith_layer targets, but {t.address} is a "
                f"`{t.alias}`. Wrap its files in a smith_layer(dependencies=[...])."
            )
    if len(base_targets) > 1:
        raise SmithTargetError(f"{address}: `base` names {len(base_targets)} targets; give one image.")
    # Every field checked before anything is built.
    base_field_sets = [image_source_field_set(t, union_membership, f"{address}: field `base`")
                       for t in base_targets]
    # A layer of another platform is left out (so one list of layers serves every platform).
    layer_sets = [SmithLayerFieldSet.create(t) for t in layer_targets]
    layers = await MultiGet(
        Get(BuiltSmithLayer, LayerForPlatform(ls, platform)) for ls in layer_sets if ls.for_platform(platform)
    )
    bases = await MultiGet(
        Get(BuiltSmithImage, SmithImageSourceFieldSet, fs) for fs in base_field_sets
    )

    out = field_set.output_path.value_or_default(file_ending=None)
    argv = ["image", "--output", out, "--tag", field_set.tag.value, "--config", "config.json"]
    uid, gid = field_set.user.uid_gid(address)
    argv += ["--uid", str(uid), "--gid", str(gid)]
    if not field_set.skeleton.value:
        argv.append("--no-skeleton")
    if field_set.compression.value != "gzip":  # gzip images keep their argv (and cache keys)
        argv += ["--compression", field_set.compression.value]
    if platform != oci_platform.DEFAULT:  # so do linux/amd64 ones
        argv += ["--platform", platform]
    inputs = [
        await Get(Digest, CreateDigest([FileContent("config.json", field_set.config_json())]))
    ]
    for i, layer in enumerate(layers):
        inputs.append(await Get(Digest, AddPrefix(layer.digest, f"layers/{i}")))
        argv += ["--layer", f"layers/{i}"]
    # Images built from smith_packages carry an SPDX SBOM per lockfile (rules/packages_sbom.py).
    sboms = await Get(
        ImageSboms,
        ImageSbomRequest(address, merge_origins(*(l.origins for l in layers)), tuple(l.digest for l in layers)),
    )
    inputs.append(sboms.digest)
    argv += sboms.attach_args()
    for base in bases:
        inputs.append(await Get(Digest, AddPrefix(base.digest, "base")))
        argv += ["--base", f"base/{base.path}"]
    archive_argv, output_files = docker_archive_outputs(out, field_set.docker_archive.value)
    argv += archive_argv

    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Assembling image {address}{oci_platform.suffix(platform)}",
            input_digest=await Get(Digest, MergeDigests(inputs)),
            output_directories=[out],
            output_files=output_files,
        ),
    )
    return BuiltSmithImage(result.output_digest, out, result.stdout.decode().strip())


def docker_archive_outputs(out: str, wanted: bool) -> "tuple[list[str], list[str]]":
    """`smith image` arguments and output files for the optional docker-archive beside a layout."""
    return ([f"--docker-archive={out}.docker.tar"], [f"{out}.docker.tar"]) if wanted else ([], [])


def rules():
    return [
        *collect_rules(),
        UnionRule(SmithImageSourceFieldSet, SmithImageFieldSet),
    ]
