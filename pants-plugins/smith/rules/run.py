"""smith_image -> `pants run`: the image in a container in the foreground through `smith launch
run` and smith's runtime; stdin/stdout pass through (a terminal too), signals reach the
container, its exit code is Pants' exit code, and the args after `--` replace its Cmd."""
from dataclasses import dataclass

from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment, PythonExecutable
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from smith.rules.smoke_test import (
    ImageLayout,
    ImageLayoutRequest,
    SmithRuntime,
    SmithTestSubsystem,
    install_runtime_argv,
    launcher_options,
)
from smith.rules.tool import SOURCES_DIR, SmithTool, core_env, core_source_files
from smith.target_types import SmithImageLayersField


@dataclass(frozen=True)
class SmithImageRunFieldSet(RunFieldSet):
    required_fields = (SmithImageLayersField,)
    # Containers need root and a machine store: nothing a cached sandbox run could promise.
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    layers: SmithImageLayersField


def _in_chroot(relpath: str) -> str:
    return "{chroot}/" + relpath


# A terminal only when Pants was given one: then the container gets one too (`--tty`).
_LAUNCH_RUN = 'p=$1; shift; if [ -t 0 ] && [ -t 1 ]; then exec "$p" launch run --tty "$@"; fi; exec "$p" launch run "$@"'


@rule(desc="Preparing to run a smith image", level=LogLevel.DEBUG)
async def run_image(
    field_set: SmithImageRunFieldSet,
    subsystem: SmithTestSubsystem,
    runtime: SmithRuntime,
    tool: SmithTool,
    pex_env: PexEnvironment,
) -> RunRequest:
    layout = await Get(
        ImageLayout, ImageLayoutRequest(field_set.address, "the `run` goal")
    )
    # The launcher runs in the workspace, not a sandbox: a PEX set up for that, as
    # `pants run` of a python_source does (pants.backend.python.goals.run_helper).
    pex_environment = pex_env.in_workspace()
    venv_pex, python = await MultiGet(
        Get(
            VenvPex,
            VenvPexRequest(
                PexRequest(
                    output_filename="smith-core.pex",
                    internal_only=True,
                    requirements=tool.pex_requirements(),
                    interpreter_constraints=tool.interpreter_constraints,
                    main=tool.main,
                ),
                pex_environment,
            ),
        ),
        Get(PythonExecutable, InterpreterConstraints, tool.interpreter_constraints),
    )
    sources = await Get(
        Digest,
        AddPrefix(
            await Get(Digest, CreateDigest(FileContent(p, c) for p, c in core_source_files())),
            SOURCES_DIR,
        ),
    )
    digest = await Get(Digest, MergeDigests([venv_pex.digest, sources, layout.digest, runtime.digest]))
    launcher = (
        "/bin/sh", "-c", _LAUNCH_RUN, "smith-launch-run", _in_chroot(venv_pex.pex.argv0),
        "--layout", _in_chroot(layout.path),
        *launcher_options(subsystem.store, runtime.path, None, subsystem.validate_run_network(), None),
        "--",  # what follows (`pants run ... -- ARGS`) replaces the image's Cmd
    )
    source = _in_chroot(runtime.source) if runtime.source else ""
    return RunRequest(
        digest=digest,
        args=install_runtime_argv(source, runtime.path, launcher),
        extra_env={
            **pex_environment.environment_dict(python=python),
            **core_env(),
            "PEX_EXTRA_SYS_PATH": _in_chroot(SOURCES_DIR),
        },
        append_only_caches={
            **pex_environment.append_only_caches,
            **(venv_pex.append_only_caches or {}),
        },
    )


def rules():
    return [*collect_rules(), *SmithImageRunFieldSet.rules()]
