"""`pants publish` of a smith_image: `smith push` of its layout (and the SBOMs in it) to `image_repository`.

The push is a side effect, so it runs as an InteractiveProcess (never cached), in the foreground
like docker's publish. `smith push` prints the manifest digest and writes it to
dist/<output_path>.digest.
"""
from dataclasses import dataclass

from pants.base.build_root import BuildRoot
from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.core.util_rules.distdir import DistDir
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, MergeDigests
from pants.engine.process import InteractiveProcess, Process
from pants.engine.rules import Get, collect_rules, rule

from smith.plugin.rules.util import signing
from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.subsystems import SmithRegistryOptions
from smith.plugin.target_types.image import (
    SmithImageOutputPathField,
    SmithImageRepositoryField,
    SmithImageSkipPushField,
    SmithImageTagsField,
    SmithTagField,
)


class PublishSmithImageRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class PublishSmithImageFieldSet(PublishFieldSet):
    publish_request_type = PublishSmithImageRequest
    required_fields = (SmithImageRepositoryField,)

    repository: SmithImageRepositoryField
    tags: SmithImageTagsField
    skip_push: SmithImageSkipPushField
    tag: SmithTagField
    output_path: SmithImageOutputPathField

    @property
    def push_tags(self):
        return tuple(dict.fromkeys(self.tags.value or (self.tag.value,)))

    @property
    def layout(self) -> str:
        # The same path the package rule (rules/image.py) gives the layout.
        return self.output_path.value_or_default(file_ending=None)

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData(
            {
                "publisher": "smith",
                "repository": self.repository.value,
                "tags": self.push_tags,
                **super().get_output_data(),
            }
        )


@rule(desc="Preparing the push of a smith image")
async def publish_smith_image(
    request: PublishSmithImageRequest,
    options: SmithRegistryOptions,
    publish_options: signing.SmithPublishSubsystem,
    distdir: DistDir,
    buildroot: BuildRoot,
) -> PublishProcesses:
    field_set = request.field_set
    repository = field_set.repository.value
    tags = field_set.push_tags
    names = tuple(f"{repository}:{tag}" for tag in tags)
    if field_set.skip_push.value:
        return PublishProcesses(
            [PublishPackages(names=names, description=f"(by `skip_push` on {field_set.address})")]
        )

    registry = repository.split("/", 1)[0]
    digest_file = buildroot.pathlib_path / distdir.relpath / f"{field_set.layout}.digest"
    argv = ["push", *options.client_args(registry), "--digest-file", str(digest_file)]
    for tag in tags[1:]:
        argv += ["--tag", tag]
    # Signing (issue 21): the key path and $SMITH_SIGNING_PASSWORD only reach this foreground,
    # never-cached process; the provenance parameters are a small JSON in its sandbox.
    argv += signing.signing_args(publish_options, str(buildroot.pathlib_path))
    argv += [f"{field_set.layout}:{field_set.tag.value}", f"{repository}:{tags[0]}"]

    env_request = options.env_request()
    env = await Get(EnvironmentVars, EnvironmentVarsRequest, env_request)
    secret_names = signing.signing_env_names(publish_options)
    if secret_names:
        secret = await Get(EnvironmentVars, EnvironmentVarsRequest(secret_names))
        env = EnvironmentVars({**env, **secret})
    digests = [pkg.digest for pkg in request.packages]
    if publish_options.signing_key and publish_options.provenance:
        params = await Get(
            signing.ProvenanceParams,
            signing.ProvenanceParamsRequest(
                field_set.address,
                (("repository", repository), ("image_tags", tuple(tags)),
                 ("tag", field_set.tag.value)),
            ),
        )
        digests.append(params.digest)
    inputs = await Get(Digest, MergeDigests(digests))
    process = await Get(
        Process,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Pushing {field_set.address} to {repository}",
            input_digest=inputs,
            env=env,
        ),
    )
    return PublishProcesses(
        [
            PublishPackages(
                names=names,
                process=InteractiveProcess.from_process(process),
                description=repository.split("/", 1)[0],
            )
        ]
    )


def rules():
    return [*collect_rules(), *PublishSmithImageFieldSet.rules(), *signing.rules()]
