"""The smith_* target types and their fields. Every field carries the help text `pants help` shows."""
from typing import Iterable, Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    Dependencies,
    DictStringToStringField,
    InvalidFieldException,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from smith.errors import SmithError
from smith import platforms as platforms
from smith.plugin.target_types.checks import DEFAULT_USER, HOST, REPOSITORY, TAG, check, parse_user
from smith.plugin.target_types.fields import OneOrMoreAddressesField, SmithPackageOutputPathField

# ----------------------------------------------------------------------------------------------
# smith_layer
# ----------------------------------------------------------------------------------------------


class SmithLayerDependenciesField(Dependencies):
    help = help_text(
        """
        What the layer holds: `file`/`files`/`resource`/`resources` targets (each file at its path
        relative to the directory of the target that owns it, under `prefix`), any packageable
        target (its built output, under `prefix`), and `smith_binary` / `smith_packages` trees
        (at their own absolute paths; `prefix` does not apply to them).
        """
    )


class SmithLayerPrefixField(StringField):
    alias = "prefix"
    default = "/"
    help = "Directory inside the image where files and packaged outputs are placed, e.g. `/read`."


class SmithLayerExcludesField(StringSequenceField):
    alias = "excludes"
    default = ()
    help = help_text(
        """
        Globs (fnmatch, on the absolute path inside the image) of entries to leave out; a glob that
        matches a directory drops everything under it. Example: `["/usr/share/doc/*"]`.
        """
    )


class SmithOwnerField(StringField):
    alias = "owner"
    default = "10:10"
    help = help_text(
        """
        `UID:GID` that owns every file of the layer (microcontainer rule: one user owns every
        file). Keep it equal to the image's `user`.
        """
    )


class SmithKeepSpecialField(BoolField):
    alias = "keep_special"
    default = False
    help = "Keep setuid/setgid/sticky bits. Off by default: a microcontainer has no setuid files."


def _check_platforms(value: Optional[Tuple[str, ...]], alias: str, address: Address) -> None:
    if value is None:
        return
    try:
        platforms.parse_list(tuple(value), f"{address}: field `{alias}`")
    except SmithError as e:
        raise InvalidFieldException(str(e)) from None


class SmithLayerPlatformsField(StringSequenceField):
    alias = "platforms"
    default = None
    help = help_text(
        f"""
        The image platforms this layer belongs to (e.g. `["linux/arm64"]`); unset: every platform.
        An image built for several platforms takes, for each platform, only the layers that belong
        to it: the way to put files that differ per platform (a prebuilt static binary for each
        architecture) in one image. Trees (`smith_packages`, `smith_binary`) need no such split:
        they are built for each platform from that platform's pins. Known platforms:
        {", ".join(f"`{p}`" for p in platforms.PLATFORMS)}.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        _check_platforms(value, cls.alias, address)
        return value


class SmithLayerTarget(Target):
    alias = "smith_layer"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithLayerDependenciesField,
        SmithLayerPrefixField,
        SmithLayerExcludesField,
        SmithOwnerField,
        SmithKeepSpecialField,
        SmithLayerPlatformsField,
    )
    help = help_text(
        """
        One layer of a microcontainer image: a deterministic, gzip'ed tar (sorted entries, fixed
        mtime = SOURCE_DATE_EPOCH or 0, one owner, normalised modes). Built by a cached Process;
        changing a file rebuilds only the layers that hold it.
        """
    )


# ----------------------------------------------------------------------------------------------
# smith_image
# ----------------------------------------------------------------------------------------------


class SmithImageLayersField(SpecialCasedDependencies):
    alias = "layers"
    help = "The `smith_layer` targets of the image, bottom first (after the base image's layers)."


class SmithImageBaseField(OneOrMoreAddressesField):
    alias = "base"
    help = help_text(
        """
        Optional base image: one `smith_image` (or `smith_remote_image`) whose layers come first
        and whose config (Env, Entrypoint, Cmd, ...) is inherited unless set here.
        """
    )


class SmithEntrypointField(StringSequenceField):
    alias = "entrypoint"
    help = "The image's Entrypoint: the executable (absolute path inside the image) and its first args."


class SmithCmdField(StringSequenceField):
    alias = "cmd"
    help = "The image's Cmd: default arguments appended to the entrypoint; `pants run` args replace it."


class SmithEnvField(DictStringToStringField):
    alias = "env"
    help = "Environment variables of the image, e.g. `{\"PATH\": \"/usr/bin\"}`."


class SmithUserField(StringField):
    alias = "user"
    default = DEFAULT_USER
    help = help_text(
        """
        `NAME:UID:GID` of the image user, as on every smith target (`UID:GID` alone is accepted):
        the config's User is `UID:GID` and the skeleton directories are owned by it. The default
        is smith's 10:10. Keep layers' `owner` equal.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            parse_user(value, cls.alias, address)
        return value

    def uid_gid(self, address: Address) -> Tuple[int, int]:
        _, uid, gid = parse_user(self.value, self.alias, address)
        return uid, gid


class SmithWorkdirField(StringField):
    alias = "workdir"
    help = "The image's WorkingDir."


class SmithLabelsField(DictStringToStringField):
    alias = "labels"
    help = "Labels in the image config."


class SmithAnnotationsField(DictStringToStringField):
    alias = "annotations"
    help = "Annotations on the image manifest (e.g. `org.opencontainers.image.source`)."


class SmithExposedPortsField(StringSequenceField):
    alias = "exposed_ports"
    default = ()
    help = "Ports the program listens on, as `PORT/tcp` or `PORT/udp`."


class SmithVolumesField(StringSequenceField):
    alias = "volumes"
    default = ("/read", "/write", "/run")
    help = "Volumes declared in the config; microcontainers mount config at /read, data at /write, tmp at /run."


class SmithSkeletonField(BoolField):
    alias = "skeleton"
    default = True
    help = help_text(
        """
        Add the microcontainer skeleton layer (empty /read /write /run /proc /sys /dev owned by the
        image user) as the first layer when there is no `base`.
        """
    )


class SmithCompressionField(StringField):
    alias = "compression"
    default = "gzip"
    valid_choices = ("gzip", "zstd")
    help = help_text(
        """
        Compression of the image's own layers and skeleton: `gzip`
        (`application/vnd.oci.image.layer.v1.tar+gzip`, read by every tool) or `zstd`
        (`...tar+zstd`: level 3, one frame, ~5% smaller than gzip and faster to write and to
        unpack; read by skopeo, podman, containerd >= 1.5 and smith's launcher, not by Debian
        bookworm's umoci 0.4.7). Both are deterministic; layers of a `base` stay as the base has
        them.
        """
    )


class SmithTagField(StringField):
    alias = "tag"
    default = "latest"
    help = "The `org.opencontainers.image.ref.name` of the image in the layout's index.json."


class SmithDockerArchiveField(BoolField):
    alias = "docker_archive"
    default = False
    help = "Also write `<output_path>.docker.tar`, a docker-archive that `docker load` / `podman load` accept."


class SmithLayoutOutputPathField(SmithPackageOutputPathField):
    """Base of the `output_path` of every target `pants package` turns into an OCI image layout
    (smith_image, smith_minimize, smith_remote_image): one package rule serves them all."""


class SmithImageOutputPathField(SmithLayoutOutputPathField):
    help = help_text(
        """
        Where `pants package` writes the OCI image layout directory, relative to `dist/`.
        Default: `path.to.dir/NAME`.
        """
    )


# ----------------------------------------------------------------------------------------------
# smith_image: where `pants publish` pushes it
# ----------------------------------------------------------------------------------------------


class SmithImageRepositoryField(StringField):
    # Not `repository`: on smith_packages that names a smith_repository target.
    alias = "image_repository"
    deprecated_alias = "repository"
    deprecated_alias_removal_version = "2.19.0.dev0"
    help = help_text(
        """
        Where `pants publish` pushes the image: `REGISTRY/PATH`, e.g.
        `registry.example.com:5000/team/hello` (no tag here: see `image_tags`). Without it the
        image is not published.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        registry, _, path = value.partition("/")
        if not path or "@" in value or not HOST.match(registry) or not REPOSITORY.match(path):
            raise InvalidFieldException(
                f"The `image_repository` field of {address}: {value!r} is not `REGISTRY/PATH` "
                "(e.g. `127.0.0.1:5000/hello`, lowercase path, no tag or digest; tags go in "
                "`image_tags`)."
            )
        return value


class SmithImageTagsField(StringSequenceField):
    # Not `tags`: every target already has Pants' own `tags` field (for `--tag` filtering).
    alias = "image_tags"
    help = help_text(
        """
        Tags `pants publish` gives the pushed image in `repository`, e.g. `["1.2.0", "latest"]`.
        Default: the image's `tag`.
        """
    )

    @classmethod
    def compute_value(
        cls, raw_value: Optional[Iterable[str]], address: Address
    ) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for tag in value or ():
            check(cls, tag, address, TAG, "a tag (letters, digits, `_`, `.`, `-`; at most 128)")
        return value


class SmithImageSkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = "If true, `pants publish` skips this image (it still packages)."


class SmithImagePlatformsField(StringSequenceField):
    alias = "platforms"
    default = (platforms.DEFAULT,)
    help = help_text(
        f"""
        The platforms to build the image for, in the order its index lists them. One platform (the
        default, `["{platforms.DEFAULT}"]`) gives a plain image manifest, as always; several give an
        OCI image index (`application/vnd.oci.image.index.v1+json`) holding one manifest per
        platform, each with its `platform` (`arm64` with variant `v8`) and each reproducible to the
        byte. Nothing is emulated: each platform's packages come from its own pins (list the
        architectures in the `smith_repository`) and ELF closures are read, not run. Known
        platforms: {", ".join(f"`{p}`" for p in platforms.PLATFORMS)}. See docs/platforms.md.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Tuple[str, ...]:
        value = super().compute_value(raw_value, address)
        _check_platforms(value, cls.alias, address)
        return tuple(platforms.get(p).name for p in value)


IMAGE_FIELDS = (
    SmithImageLayersField,
    SmithImagePlatformsField,
    SmithImageBaseField,
    SmithEntrypointField,
    SmithCmdField,
    SmithEnvField,
    SmithUserField,
    SmithWorkdirField,
    SmithLabelsField,
    SmithAnnotationsField,
    SmithExposedPortsField,
    SmithVolumesField,
    SmithSkeletonField,
    SmithCompressionField,
    SmithTagField,
    SmithDockerArchiveField,
    SmithImageOutputPathField,
    SmithImageRepositoryField,
    SmithImageTagsField,
    SmithImageSkipPushField,
)


class SmithImageTarget(Target):
    alias = "smith_image"
    core_fields = (*COMMON_TARGET_FIELDS, *IMAGE_FIELDS)
    help = help_text(
        """
        A microcontainer image: `pants package` writes an OCI image layout (oci-layout,
        index.json, blobs/sha256/...) whose bytes depend only on the sources, never on the
        checkout path, clock, umask or user.
        """
    )


def all_target_types():
    return [SmithLayerTarget, SmithImageTarget]
