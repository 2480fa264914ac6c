"""The smith_* target types and their fields. Every field carries the help text `pants help` shows."""
from pants.core.goals.package import OutputPathField
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    Dependencies,
    DictStringToStringField,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from smith.single_address import OneOrMoreAddressesField

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


class SmithLayerTarget(Target):
    alias = "smith_layer"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithLayerDependenciesField,
        SmithLayerPrefixField,
        SmithLayerExcludesField,
        SmithOwnerField,
        SmithKeepSpecialField,
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
    default = "10:10"
    help = "The image's User (`UID:GID`); the default 10:10 is smith's. Keep layers' `owner` equal."


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


class SmithTagField(StringField):
    alias = "tag"
    default = "latest"
    help = "The `org.opencontainers.image.ref.name` of the image in the layout's index.json."


class SmithDockerArchiveField(BoolField):
    alias = "docker_archive"
    default = False
    help = "Also write `<output_path>.docker.tar`, a docker-archive that `docker load` / `podman load` accept."


class SmithImageOutputPathField(OutputPathField):
    help = help_text(
        """
        Where `pants package` writes the OCI image layout directory, relative to `dist/`.
        Default: `path.to.dir/NAME`.
        """
    )


IMAGE_FIELDS = (
    SmithImageLayersField,
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
    SmithTagField,
    SmithDockerArchiveField,
    SmithImageOutputPathField,
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




# ----------------------------------------------------------------------------------------------
# smith_command: the plugin's own stdlib-only commands as fast-starting zipapps
# ----------------------------------------------------------------------------------------------


class SmithCommandModuleField(StringField):
    alias = "module"
    required = True
    help = "The module of the `smith` package run as `__main__`, e.g. `smith.runtime`."


class SmithCommandPythonField(StringField):
    alias = "python"
    default = "/usr/bin/python3"
    help = help_text(
        """
        The interpreter of the `#!` line, started as `PYTHON -ISc...` (isolated, no site): the
        machine's own Python 3 (>= 3.9). An absolute path: `python3` on PATH may be a slow shim.
        """
    )


class SmithCommandOnlyField(StringSequenceField):
    alias = "only"
    default = ()
    help = help_text(
        """
        Files or directories of the `smith` package to pack (paths like `smith/runtime`); empty
        packs all of it. Fewer modules, faster start.
        """
    )


class SmithCommandPrecompileField(BoolField):
    alias = "precompile"
    default = True
    help = help_text(
        """
        Pack `.pyc` files compiled by `python` (unchecked-hash, so deterministic) beside the
        sources: no compilation at start. Another Python version falls back to the sources.
        """
    )


class SmithCommandBundleField(StringSequenceField):
    alias = "bundle"
    default = ()
    help = help_text(
        """
        Pure-Python packages of the `[smith-tool]` requirements to pack into the zipapp too,
        e.g. `["elftools", "yaml", "debian"]` for the full `smith` CLI.
        """
    )


class SmithCommandTarget(Target):
    alias = "smith_command"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithCommandModuleField,
        SmithCommandPythonField,
        SmithCommandBundleField,
        SmithCommandOnlyField,
        SmithCommandPrecompileField,
        OutputPathField,
    )
    help = help_text(
        """
        One of smith's own stdlib-only commands (the runtime, crashcart) packaged by `pants
        package` as a deterministic, executable zipapp of the `smith` package.
        """
    )


def all_target_types():
    return [SmithLayerTarget, SmithImageTarget, SmithCommandTarget]
