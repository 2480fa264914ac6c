"""smith_remote_image: an image in a registry, pulled by digest."""
import re
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    InvalidFieldException,
    SingleSourceField,
    StringField,
    Target,
)
from pants.util.strutil import help_text

from smith.plugin.target_types.image import SmithLayoutOutputPathField
from smith.plugin.target_types.checks import HOST as _HOST, REPOSITORY as _REPOSITORY, check as _check

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_PLATFORM = re.compile(r"^(?:all|[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?)$")


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
    help = help_text(
        """
        The `os/arch[/variant]` picked when `digest` names an index of several platforms, or
        `all`: keep the whole index (every platform's image, the index's own digest), which
        tests then run per platform and `smith_minimize(platform=...)` picks from.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        return _check(cls, value, address, _PLATFORM, "`os/arch[/variant]`, e.g. `linux/amd64`, or `all`")


class SmithRemoteVerifyKeyField(SingleSourceField):
    alias = "verify_key"
    required = False
    default = None
    help = help_text(
        """
        A public key (PEM, e.g. the `.pub` of `smith keygen`, or cosign's `cosign.pub`), relative
        to this BUILD file. The pull then refuses the image unless its digest carries a cosign
        signature by this key that names this digest and this repository; it is checked before any
        layer is fetched. The key file is a source of this target, so changing it re-pulls.
        """
    )


class SmithRemoteImageOutputPathField(SmithLayoutOutputPathField):
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
        SmithRemoteVerifyKeyField,
        SmithRemoteImageOutputPathField,
    )
    help = help_text(
        """
        An image in a registry, pulled by digest (verified blob by blob) into an OCI layout by a
        cached Process. Use it as `smith_image(base=...)` or `smith_minimize(image=...)`; `pants
        package` writes the pulled layout to dist/.
        """
    )

