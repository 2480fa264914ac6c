"""The registry's Pants surface: smith_image's publish fields, smith_remote_image, [smith-registry]."""
import re
from typing import Iterable, Optional, Tuple

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVarsRequest
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    InvalidFieldException,
    StringField,
    StringSequenceField,
    Target,
)
from pants.option.option_types import StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import help_text

from smith.target_types import SmithImageTarget

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# host[:port]/path as the registry client accepts it; no tag, no digest (those have their own fields).
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")


def _check(cls, value: Optional[str], address: Address, pattern, what: str) -> Optional[str]:
    if value is not None and not pattern.match(value):
        raise InvalidFieldException(f"The `{cls.alias}` field of {address}: {value!r} is not {what}.")
    return value


# ----------------------------------------------------------------------------------------------
# smith_image: where `pants publish` pushes it
# ----------------------------------------------------------------------------------------------


class SmithImageRepositoryField(StringField):
    alias = "repository"
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
        if not path or "@" in value or not _HOST.match(registry) or not _REPOSITORY.match(path):
            raise InvalidFieldException(
                f"The `repository` field of {address}: {value!r} is not `REGISTRY/PATH` "
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
            _check(cls, tag, address, _TAG, "a tag (letters, digits, `_`, `.`, `-`; at most 128)")
        return value


class SmithImageSkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = "If true, `pants publish` skips this image (it still packages)."


def image_plugin_fields():
    return [
        SmithImageTarget.register_plugin_field(f)
        for f in (SmithImageRepositoryField, SmithImageTagsField, SmithImageSkipPushField)
    ]


# ----------------------------------------------------------------------------------------------
# smith_remote_image: an image pulled from a registry, pinned by digest
# ----------------------------------------------------------------------------------------------


class SmithRemoteRegistryField(StringField):
    alias = "registry"
    required = True
    help = "The registry's `host[:port]`, e.g. `docker.io`, `ghcr.io` or `127.0.0.1:5000`."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        return _check(cls, value, address, _HOST, "`host[:port]` (no scheme, no path)")


class SmithRemoteRepositoryField(StringField):
    alias = "repository"
    required = True
    help = "The repository inside the registry, e.g. `library/debian` (no tag, no digest)."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and (":" in value or "@" in value):
            raise InvalidFieldException(
                f"The `repository` field of {address}: {value!r} holds a tag or digest; "
                "smith_remote_image pulls by `digest` only (a tag can move)."
            )
        return _check(cls, value, address, _REPOSITORY, "a lowercase repository path like `team/app`")


class SmithRemoteDigestField(StringField):
    alias = "digest"
    help = help_text(
        """
        The manifest (or index) digest to pull, `sha256:` + 64 hex digits. Required: a tag can
        move, so a pull by tag alone is refused. Find it with
        `skopeo inspect --format '{{.Digest}}' docker://REGISTRY/REPOSITORY:TAG`.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is None:
            raise InvalidFieldException(
                f"{address}: smith_remote_image needs `digest=\"sha256:...\"`: pulling by tag alone is "
                "refused (a tag can move and the build would stop being reproducible). Find the "
                "digest with `skopeo inspect --format '{{.Digest}}' docker://REGISTRY/REPOSITORY:TAG`."
            )
        return _check(cls, value, address, _DIGEST, "`sha256:` followed by 64 lowercase hex digits")


class SmithRemotePlatformField(StringField):
    alias = "platform"
    default = "linux/amd64"
    help = "The `os/arch[/variant]` picked when `digest` names an index of several platforms."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        return _check(cls, value, address, _PLATFORM, "`os/arch[/variant]`, e.g. `linux/amd64`")


class SmithRemoteImageOutputPathField(OutputPathField):
    help = help_text(
        """
        Where `pants package` writes the pulled OCI image layout directory, relative to `dist/`.
        Default: `path.to.dir/NAME`.
        """
    )


class SmithRemoteImageTarget(Target):
    alias = "smith_remote_image"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithRemoteRegistryField,
        SmithRemoteRepositoryField,
        SmithRemoteDigestField,
        SmithRemotePlatformField,
        SmithRemoteImageOutputPathField,
    )
    help = help_text(
        """
        An image in a registry, pulled by digest (verified blob by blob) into an OCI layout by a
        cached Process. Use it as `smith_image(base=...)` or `smith_minimize(image=...)`; `pants
        package` writes the pulled layout to dist/.
        """
    )


def target_types():
    return [SmithRemoteImageTarget]


# ----------------------------------------------------------------------------------------------
# [smith-registry]: what the push and pull processes see of the user's machine
# ----------------------------------------------------------------------------------------------


class SmithRegistryOptions(Subsystem):
    options_scope = "smith-registry"
    help = "How `pants publish` and smith_remote_image reach registries (credentials, TLS)."

    env_vars = StrListOption(
        default=["HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"],
        help=help_text(
            """
            Environment variables passed to `smith push`/`smith pull`, `NAME` (copied from Pants'
            environment) or `NAME=value`. Credentials are read from `$REGISTRY_AUTH_FILE`,
            `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json` and
            `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
            """
        ),
        advanced=True,
    )
    ca_certs = StrOption(
        default=None,
        help="PEM file of CA certificates trusted in addition to the system CAs (absolute path).",
    )
    insecure_registries = StrListOption(
        default=[],
        help=help_text(
            """
            Registries (`host[:port]`) reached without TLS verification or over plain http. Plain
            http to 127.0.0.1 and localhost needs no entry.
            """
        ),
    )

    def env_request(self) -> EnvironmentVarsRequest:
        return EnvironmentVarsRequest(self.env_vars)

    def client_args(self, registry: str) -> Tuple[str, ...]:
        """`smith push`/`smith pull` options for one registry."""
        args = ()  # type: Tuple[str, ...]
        if self.ca_certs:
            args += ("--ca", self.ca_certs)
        if registry in self.insecure_registries:
            args += ("--insecure",)
        return args
