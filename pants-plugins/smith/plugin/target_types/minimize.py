"""smith_minimize: an existing image cut down to one program (its ELF closure plus `paths`)."""
from typing import Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    DictStringToStringField,
    InvalidFieldException,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from smith.errors import SmithError
from smith.registry.platforms import parse_platform
from smith.plugin.target_types.checks import DEFAULT_USER, parse_user
from smith.plugin.target_types.fields import OneOrMoreAddressesField
from smith.plugin.target_types.image import SmithDockerArchiveField, SmithLayoutOutputPathField


def is_address(value: str) -> bool:
    """`image` is an address when it starts with `:` or `//` (else a path, if that path exists)."""
    return value.startswith(":") or value.startswith("//")


class SmithMinimizeImageField(StringField):
    alias = "image"
    required = True
    help = help_text(
        """
        The image to minimize: the address of a `smith_image` or of a `file` target holding an
        image tar, or a path relative to this BUILD file of
        an OCI layout directory, an OCI layout tar or a docker-archive tar (`docker save` /
        `podman save` / `skopeo copy ... docker-archive:`). Addresses start with `:` or `//`
        or name no existing file. Either way it is a dependency of this target (inferred: the
        named target, or the targets owning the image files).
        """
    )


class SmithMinimizeImageTagField(StringField):
    alias = "image_tag"
    help = "Which image of a source holding several (OCI ref name or docker-archive RepoTag)."


class SmithMinimizeTagField(StringField):
    alias = "tag"
    default = "latest"
    help = "`org.opencontainers.image.ref.name` of the minimized image."


class SmithMinimizeEntrypointField(StringSequenceField):
    alias = "entrypoint"
    help = help_text(
        """
        New Entrypoint; its first item is the program kept (an absolute path, or a name found
        through the image's PATH). Default: the image's own Entrypoint, else its Cmd. Setting
        it drops the image's Cmd, as Docker does.
        """
    )


class SmithMinimizeCmdField(StringSequenceField):
    alias = "cmd"
    help = "New Cmd. Default: the image's own (unless `entrypoint` is set)."


class SmithMinimizePathsField(StringSequenceField):
    alias = "paths"
    default = ()
    help = help_text(
        """
        Absolute globs of more files to keep from the image as they are (a matched directory is
        kept whole), e.g. `["/etc/ssl/certs/**", "/usr/share/zoneinfo/UTC"]`. A glob that
        matches nothing is an error.
        """
    )


class SmithMinimizeTraceField(OneOrMoreAddressesField):
    alias = "trace"
    help = help_text(
        """
        `smith_image_test` / `smith_service_test` targets whose workload decides what is kept:
        each runs against the full `image` while fanotify records every file its containers
        open, execute or map; the result keeps those files, the ELF closure of every traced
        ELF, glibc's own dlopens (libgcc_s), the symlinks leading to them, `paths` and the
        skeleton. Then the same tests run against the minimized image, and the build fails,
        naming the missing path when the output shows one, unless they pass. Needs root, as
        the tests do. Name tests of the full image (not of this target).
        """
    )


class SmithMinimizeExcludesField(StringSequenceField):
    alias = "excludes"
    default = ()
    help = "fnmatch globs of image paths to drop (with everything below them), e.g. `[\"/usr/share/doc/*\"]`."


class SmithMinimizePythonSourcelessField(StringSequenceField):
    alias = "python_sourceless"
    default = ()
    help = help_text(
        """
        fnmatch globs of image paths (a match covers everything below it) where kept Python
        modules lose their source: each kept `D/__pycache__/N.TAG.pyc` whose 16-byte header says
        unchecked-hash of TAG's interpreter (what `python_bytecode` builds) is written as `D/N.pyc`
        (the sourceless layout of `compileall -b`) and `D/N.py` is dropped (`D/pkg/__init__.pyc`
        for a package). Any other `.pyc` (timestamp, checked-hash, another magic, a symlink) and a
        module whose `.py` the workload itself opened are left as they are. Saves the bytes of
        the sources, e.g. `["/usr/lib/python3.11/**"]`; the cost: tracebacks through those
        modules show no source lines.
        """
    )


class SmithMinimizeNssField(BoolField):
    alias = "nss"
    default = False
    help = "Add the NSS modules and minimal /etc/passwd, /etc/group, /etc/nsswitch.conf for `user`."


class SmithMinimizeUserField(StringField):
    alias = "user"
    default = DEFAULT_USER
    help = help_text(
        """
        `NAME:UID:GID` (as on every smith target; `UID:GID` alone means the name `smith`): every file is owned by UID:GID, the image runs as UID:GID, and `nss`
        writes NAME into /etc/passwd.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            parse_user(value, cls.alias, address)
        return value

    def parsed(self, address: Address) -> Tuple[str, int, int]:
        return parse_user(self.value, self.alias, address)


class SmithMinimizeEnvField(DictStringToStringField):
    alias = "env"
    help = "Environment entries set on top of the image's Env (also used to find the program)."


class SmithMinimizeWorkdirField(StringField):
    alias = "workdir"
    help = "WorkingDir. Default: the image's own."


class SmithMinimizeLabelsField(DictStringToStringField):
    alias = "labels"
    help = "Labels set on top of the image's Labels."


class SmithMinimizeExposedPortsField(StringSequenceField):
    alias = "exposed_ports"
    help = "ExposedPorts (`8080/tcp`, `53/udp`); replaces the image's when given."


class SmithMinimizeDockerArchiveField(SmithDockerArchiveField):
    help = "Also write `<output_path>.docker.tar` (a `docker load`-able archive)."


class SmithMinimizeOutputPathField(SmithLayoutOutputPathField):
    help = "Where `pants package` writes the OCI image layout directory, relative to `dist/`."


class SmithMinimizePlatformField(StringField):
    alias = "platform"
    default = "linux/amd64"
    help = help_text(
        """
        The platform (`os/arch[/variant]`) taken from a multi-platform source image and given
        to the minimized image, e.g. `linux/arm64`. A single-platform source must be of this
        platform. One smith_minimize makes one platform's image: for several, write one target
        per platform.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        try:
            parse_platform(value or "")
        except SmithError as e:
            raise InvalidFieldException(f"The `{cls.alias}` field of {address}: {e}.")
        return value


class SmithMinimizeTarget(Target):
    alias = "smith_minimize"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithMinimizeImageField,
        SmithMinimizeImageTagField,
        SmithMinimizeTagField,
        SmithMinimizeEntrypointField,
        SmithMinimizeCmdField,
        SmithMinimizePathsField,
        SmithMinimizeTraceField,
        SmithMinimizeExcludesField,
        SmithMinimizePythonSourcelessField,
        SmithMinimizeNssField,
        SmithMinimizeUserField,
        SmithMinimizeEnvField,
        SmithMinimizeWorkdirField,
        SmithMinimizeLabelsField,
        SmithMinimizeExposedPortsField,
        SmithMinimizeDockerArchiveField,
        SmithMinimizeOutputPathField,
        SmithMinimizePlatformField,
    )
    help = help_text(
        """
        An existing image (a smith_image, an OCI layout or a docker archive) cut down to one
        program: the untrusted image is unpacked safely, the program's ELF closure, `paths` and
        what the `trace` tests use are kept, and `pants package` writes an OCI image layout that
        keeps the image's Env,
        WorkingDir, ExposedPorts and Labels unless overridden. Usable wherever a smith_image's
        result is (BuiltSmithImage), as a `smith_layer` dependency and as a `smith_binary` root.
        """
    )
