"""smith_image_test -> `pants test`: build the image, run it once with smith's runtime through
`smith launch test`, and report the launcher's PASS/FAIL with the container's output."""
import dataclasses
from dataclasses import dataclass
from typing import Any

from pants.core.goals.test import TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.fs import AddPrefix, Digest, DigestSubset, MergeDigests, PathGlobs, RemovePrefix
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import SourcesField, Targets, UnparsedAddressInputs
from pants.util.logging import LogLevel

from smith.plugin.rules.util.image import BuiltSmithImage
from smith.plugin.rules.util.launch import (
    ImageToRunRequest,
    SmithImageTargetError,
    SmithRuntime,
    container_command,
    install_runtime_argv,
    launcher_options,
    platform_count,
    platform_options,
    launcher_test_result,
)
from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.subsystems import SmithTestSubsystem
from smith.plugin.target_types.test import (
    SmithTestArgsField,
    SmithTestCommandField,
    SmithTestEnvField,
    SmithTestExpectExitField,
    SmithTestExpectStderrField,
    SmithTestExpectStdoutField,
    SmithTestImageField,
    SmithTestNetworkField,
    SmithTestReadFilesField,
    SmithTestReadRootField,
    SmithTestTimeoutField,
)


# ----------------------------------------------------------------------------------------------
# pants test
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmithImageTestFieldSet(TestFieldSet):
    required_fields = (SmithTestImageField,)

    image: SmithTestImageField
    command: SmithTestCommandField
    args: SmithTestArgsField
    env: SmithTestEnvField
    read_files: SmithTestReadFilesField
    read_root: SmithTestReadRootField
    expect_exit: SmithTestExpectExitField
    expect_stdout: SmithTestExpectStdoutField
    expect_stderr: SmithTestExpectStderrField
    timeout: SmithTestTimeoutField
    network: SmithTestNetworkField


class SmithImageTestRequest(TestRequest):
    tool_subsystem = SmithTestSubsystem
    field_set_type = SmithImageTestFieldSet


_READ_DIR = "__read"


def read_root_of(field_set: SmithImageTestFieldSet) -> str:
    root = (field_set.read_root.value or "").strip("/")
    base = field_set.address.spec_path
    return "/".join(p for p in (base, root) if p)


@rule(desc="Running a smith image test", level=LogLevel.DEBUG)
async def run_image_test(
    batch: SmithImageTestRequest.Batch[SmithImageTestFieldSet, Any],
    test_subsystem: TestSubsystem,
    subsystem: SmithTestSubsystem,
    runtime: SmithRuntime,
) -> TestResult:
    field_set = batch.single_element
    address = field_set.address
    images = await Get(Targets, UnparsedAddressInputs, field_set.image.to_unparsed_address_inputs())
    if len(images) != 1:
        raise SmithImageTargetError(
            f"{address}: `image` names {len(images)} targets; give exactly one image."
        )
    layout = await Get(
        BuiltSmithImage, ImageToRunRequest(images[0].address, f"{address}: field `image`")
    )

    read_targets = await Get(Targets, UnparsedAddressInputs, field_set.read_files.to_unparsed_address_inputs())
    read_sources = await Get(
        SourceFiles, SourceFilesRequest(t[SourcesField] for t in read_targets if t.has_field(SourcesField))
    )
    root = read_root_of(field_set)
    outside = [f for f in read_sources.files if not f.startswith(root + "/")] if root else []
    if outside:
        raise SmithImageTargetError(
            f"{address}: `read_files` holds {outside[0]}, which is not under `read_root` "
            f"({root}/); move it there or set `read_root` to the directory that stands for /read."
        )
    read_digest = read_sources.snapshot.digest
    if root and read_targets:
        read_digest = await Get(Digest, RemovePrefix(
            await Get(Digest, DigestSubset(read_digest, PathGlobs([f"{root}/**"]))), root))
    read_digest = await Get(Digest, AddPrefix(read_digest, _READ_DIR))

    argv = ["launch", "test", "--layout", layout.path,
            *launcher_options(subsystem.store, runtime.path, field_set.env.value,
                              field_set.network.value, field_set.timeout.value),
            *platform_options(subsystem, many=True),
            "--expect-exit", str(field_set.expect_exit.value)]
    if field_set.read_files.value:
        argv += ["--read", _READ_DIR]
    if field_set.expect_stdout.value is not None:
        argv += ["--expect-stdout", field_set.expect_stdout.value]
    if field_set.expect_stderr.value is not None:
        argv += ["--expect-stderr", field_set.expect_stderr.value]
    argv += container_command(tuple(field_set.command.value or ()), tuple(field_set.args.value or ()))

    inputs = await Get(Digest, MergeDigests([layout.digest, runtime.digest, read_digest]))
    process = await Get(
        Process,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Running smith image test {address}",
            input_digest=inputs,
            # The container's own timeout per platform, plus time to unpack new layers into the
            # store (and to install qemu the first time a foreign platform runs).
            timeout_seconds=(field_set.timeout.value + 120) * await platform_count(layout),
            cache_scope=(ProcessCacheScope.PER_SESSION if test_subsystem.force
                         else ProcessCacheScope.SUCCESSFUL),
            level=LogLevel.DEBUG,
        ),
    )
    process = dataclasses.replace(
        process, argv=install_runtime_argv(runtime.source, runtime.path, process.argv))
    result = await Get(FallibleProcessResult, Process, process)
    return launcher_test_result(result, address, test_subsystem.output)


def rules():
    return [*collect_rules(), *SmithImageTestRequest.rules()]
