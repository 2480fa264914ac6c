"""smith_image -> `pants run`: the image in a container in the foreground through `smith launch
run` and smith's runtime; stdin/stdout pass through (a terminal too), signals reach the
container, its exit code is Pants' exit code, and the args after `--` replace its Cmd."""
from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from smith.plugin.rules.util.image import BuiltSmithImage
from smith.plugin.rules.util.launch import (
    ImageToRunRequest,
    SmithRuntime,
    install_runtime_argv,
    launcher_options,
    platform_options,
)
from smith.plugin.rules.util.process import (
    SmithWorkspaceCommand,
    SmithWorkspaceCommandRequest,
    in_chroot,
)
from smith.plugin.subsystems import SmithTestSubsystem
from smith.plugin.target_types.image import SmithImageLayersField


@dataclass(frozen=True)
class SmithImageRunFieldSet(RunFieldSet):
    required_fields = (SmithImageLayersField,)
    # Containers need root and a machine store: nothing a cached sandbox run could promise.
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    layers: SmithImageLayersField


# A terminal only when Pants was given one: then the container gets one too (`--tty`).
_LAUNCH_RUN = 'p=$1; shift; if [ -t 0 ] && [ -t 1 ]; then exec "$p" launch run --tty "$@"; fi; exec "$p" launch run "$@"'


@rule(desc="Preparing to run a smith image", level=LogLevel.DEBUG)
async def run_image(
    field_set: SmithImageRunFieldSet, subsystem: SmithTestSubsystem, runtime: SmithRuntime
) -> RunRequest:
    layout, core = await MultiGet(
        Get(BuiltSmithImage, ImageToRunRequest(field_set.address, "the `run` goal")),
        Get(SmithWorkspaceCommand, SmithWorkspaceCommandRequest()),
    )
    digest = await Get(Digest, MergeDigests([core.digest, layout.digest, runtime.digest]))
    launcher = (
        "/bin/sh", "-c", _LAUNCH_RUN, "smith-launch-run", *core.argv,
        "--layout", in_chroot(layout.path),
        *launcher_options(subsystem.store, runtime.path, None, subsystem.validate_run_network(), None),
        *platform_options(subsystem, many=False),
        "--",  # what follows (`pants run ... -- ARGS`) replaces the image's Cmd
    )
    source = in_chroot(runtime.source) if runtime.source else ""
    return RunRequest(
        digest=digest,
        args=install_runtime_argv(source, runtime.path, launcher),
        extra_env=dict(core.env),
        append_only_caches=dict(core.append_only_caches),
    )


def rules():
    return [*collect_rules(), *SmithImageRunFieldSet.rules()]
