"""smith_remote_image -> BuiltSmithImage: `smith pull` of a digest-pinned image, as a cached Process
(also a package: `pants package` writes the pulled layout to dist/).

The Process is keyed by registry, repository, digest and platform (plus the registry options), not
by the target: it pulls into a fixed directory, moved to the target's output path afterwards. The
pull verifies every blob against its digest, so a cached result is the same bytes a new pull gets.
"""
from dataclasses import dataclass

from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, Digest, RemovePrefix
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import FieldSet, HydratedSources, HydrateSourcesRequest
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from smith.plugin.subsystems import SmithRegistryOptions
from smith.plugin.target_types.remote_image import (
    SmithRemoteDigestField,
    SmithRemoteImageOutputPathField,
    SmithRemotePlatformField,
    SmithRemoteRegistryField,
    SmithRemoteRepositoryField,
    SmithRemoteVerifyKeyField,
)
from smith.plugin.rules.util.image import BuiltSmithImage, SmithImageSourceFieldSet
from smith.plugin.rules.util.process import SmithProcess

# Where every pull writes its layout: the same for all targets, so equal pulls share one cache entry.
_PULLED = "pulled"


@dataclass(frozen=True)
class SmithRemoteImageFieldSet(FieldSet):
    required_fields = (SmithRemoteRegistryField, SmithRemoteRepositoryField, SmithRemoteDigestField)

    registry: SmithRemoteRegistryField
    repository: SmithRemoteRepositoryField
    digest: SmithRemoteDigestField
    platform: SmithRemotePlatformField
    verify_key: SmithRemoteVerifyKeyField
    output_path: SmithRemoteImageOutputPathField

    @property
    def reference(self) -> str:
        return f"{self.registry.value}/{self.repository.value}@{self.digest.value}"


@rule(desc="Pulling a remote image", level=LogLevel.DEBUG)
async def pull_remote_image(
    field_set: SmithRemoteImageFieldSet, options: SmithRegistryOptions
) -> BuiltSmithImage:
    env = await Get(EnvironmentVars, EnvironmentVarsRequest, options.env_request())
    # verify_key (issue 21): the public key file is an input of the pull, so it is in its key.
    verify_args, input_digest = [], EMPTY_DIGEST
    if field_set.verify_key.value:
        key = await Get(HydratedSources, HydrateSourcesRequest(field_set.verify_key))
        if not key.snapshot.files:
            raise ValueError(f"{field_set.address}: verify_key {field_set.verify_key.value!r} "
                             "does not exist")
        verify_args, input_digest = ["--verify-key", key.snapshot.files[0]], key.snapshot.digest
    argv = [
        "pull",
        *options.client_args(field_set.registry.value),
        *verify_args,
        "--platform",
        field_set.platform.value,
        field_set.reference,
        _PULLED,
    ]
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Pulling {field_set.reference} ({field_set.platform.value}) "
            f"for {field_set.address}",
            input_digest=input_digest,
            output_directories=[_PULLED],
            env=env,
        ),
    )
    layout = field_set.output_path.value_or_default(file_ending=None)
    pulled = await Get(Digest, RemovePrefix(result.output_digest, _PULLED))
    return BuiltSmithImage(
        await Get(Digest, AddPrefix(pulled, layout)), layout, result.stdout.decode().strip()
    )


def rules():
    return [
        *collect_rules(),
        UnionRule(SmithImageSourceFieldSet, SmithRemoteImageFieldSet),
    ]
