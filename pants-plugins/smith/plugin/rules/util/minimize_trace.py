"""smith_minimize(trace=[tests]): replay tests against an image, traced or as a check.

A test named in `trace` is turned into the very `smith launch service|test` Process that `pants
test` runs (rules/goals/service.py, rules/goals/test.py), with the image under test replaced:
  - on the full image, under `smith trace` -> trace-N.json (a cached Process: inputs are the
    image's digest and the test's spec, so an unchanged build traces nothing);
  - on the minimized image, as is: it must pass, or the build fails naming what is missing.
"""
import dataclasses
import json
from dataclasses import dataclass
from typing import List, Tuple

from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import Target, Targets, UnparsedAddressInputs, WrappedTarget, WrappedTargetRequest
from pants.util.logging import LogLevel

from smith.errors import for_terminal
from smith.oci.trace import missing_hints
from smith.plugin.rules.goals.service import (
    SETUP_SECONDS,
    SPEC,
    SmithServiceTestFieldSet,
    _read_dir,
    service_spec_of,
)
from smith.plugin.rules.goals.test import SmithImageTestFieldSet
from smith.plugin.rules.util.image import BuiltSmithImage
from smith.plugin.rules.util.launch import (
    ImageToRunRequest,
    SmithRuntime,
    container_command,
    install_runtime_argv,
    launcher_options,
)
from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.subsystems import SmithTestSubsystem

SHOWN_OUTPUT = 6000  # characters of a failed test's output in the error


class SmithMinimizeTraceError(ValueError):
    pass


@dataclass(frozen=True)
class ReplayRequest:
    """Test `test` of `origin`'s `trace`, to be run against `image` instead of its own image."""

    test: Address
    origin: Address
    image: BuiltSmithImage


@dataclass(frozen=True)
class Replay:
    """The test's `smith launch` argv and inputs (the image included), ready to run or trace."""

    test: Address
    argv: Tuple[str, ...]
    digest: Digest
    timeout: int
    runtime_source: str
    runtime_path: str


def check_test_target(target: Target, origin: Address) -> None:
    """A `trace` entry must be a test this module can replay."""
    if not (SmithServiceTestFieldSet.is_applicable(target) or SmithImageTestFieldSet.is_applicable(target)):
        raise SmithMinimizeTraceError(
            f"{origin}: field `trace`: {target.address} is a `{target.alias}`, not a "
            "`smith_service_test` or `smith_image_test`; name the tests whose workload the "
            "minimized image must serve (tests of the full image)."
        )


@rule(desc="Preparing a smith test to replay", level=LogLevel.DEBUG)
async def replay_of(request: ReplayRequest, subsystem: SmithTestSubsystem, runtime: SmithRuntime) -> Replay:
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.test, f"{request.origin} `trace`"))
    target = wrapped.target
    image = request.image
    if SmithServiceTestFieldSet.is_applicable(target):
        fs = SmithServiceTestFieldSet.create(target)
        client = None
        if fs.client.value:
            clients = await Get(Targets, UnparsedAddressInputs, fs.client.to_unparsed_address_inputs())
            client = await Get(BuiltSmithImage, ImageToRunRequest(
                clients[0].address, f"{fs.address}: field `client`"))
        read_digest = await _read_dir(fs.address, fs.read_files, fs.read_root)
        spec = service_spec_of(fs, image.path, client.path if client else None, bool(fs.read_files.value))
        spec_digest = await Get(Digest, CreateDigest([
            FileContent(SPEC, json.dumps(spec, sort_keys=True, indent=1).encode())]))
        argv = ("launch", "service", "--spec", SPEC, "--store", subsystem.store, "--runtime", runtime.path,
                "--emulation", subsystem.emulation.value)
        digests = [image.digest, *([client.digest] if client else []), read_digest, spec_digest, runtime.digest]
        timeout = fs.timeout.value + SETUP_SECONDS
    elif SmithImageTestFieldSet.is_applicable(target):
        fs = SmithImageTestFieldSet.create(target)
        read_digest = await _read_dir(fs.address, fs.read_files, fs.read_root)
        argv = ("launch", "test", "--layout", image.path,
                *launcher_options(subsystem.store, runtime.path, fs.env.value, fs.network.value, fs.timeout.value),
                "--emulation", subsystem.emulation.value, "--expect-exit", str(fs.expect_exit.value))
        if fs.read_files.value:
            argv += ("--read", "__read")
        if fs.expect_stdout.value is not None:
            argv += ("--expect-stdout", fs.expect_stdout.value)
        if fs.expect_stderr.value is not None:
            argv += ("--expect-stderr", fs.expect_stderr.value)
        argv += tuple(container_command(tuple(fs.command.value or ()), tuple(fs.args.value or ())))
        digests = [image.digest, read_digest, runtime.digest]
        timeout = fs.timeout.value + SETUP_SECONDS
    else:
        check_test_target(target, request.origin)
        raise AssertionError("unreachable")
    return Replay(request.test, argv, await Get(Digest, MergeDigests(digests)), timeout,
                  runtime.source, runtime.path)


def _process(replay: Replay, process: Process) -> Process:
    return dataclasses.replace(
        process, argv=install_runtime_argv(replay.runtime_source, replay.runtime_path, process.argv))


@dataclass(frozen=True)
class TraceRequest:
    replay: Replay
    image_path: str
    origin: Address
    output: str  # trace file name in the result
    platform: str  # the smith_minimize's: of a multi-platform image, the one traced


def trace_argv(request: TraceRequest) -> List[str]:
    """`smith trace` around the test's launch command, for the platform being minimized (the
    launcher alone would run every platform of an index, and the trace would mix them)."""
    return ["trace", "--output", request.output, "--image", request.image_path,
            "--platform", request.platform, "--", *request.replay.argv]


@dataclass(frozen=True)
class TraceResult:
    digest: Digest  # the trace file


@rule(desc="Tracing a smith test", level=LogLevel.DEBUG)
async def trace_test(request: TraceRequest) -> TraceResult:
    replay = request.replay
    process = await Get(Process, SmithProcess, SmithProcess.of(
        trace_argv(request),
        description=f"Tracing {replay.test} for {request.origin}",
        input_digest=replay.digest,
        output_files=[request.output],
        timeout_seconds=replay.timeout,
    ))
    result = await Get(FallibleProcessResult, Process, _process(replay, process))
    if result.exit_code != 0:
        raise SmithMinimizeTraceError(
            f"{request.origin}: field `trace`: {replay.test} failed on the full image, so it cannot "
            f"be traced; make it pass there first (`./pants test {replay.test}`).\n"
            + _output(result))
    return TraceResult(result.output_digest)


@dataclass(frozen=True)
class CheckRequest:
    replay: Replay
    origin: Address


@dataclass(frozen=True)
class CheckResult:
    test: Address


def _output(result: FallibleProcessResult) -> str:
    """The test's output as quoted in an error: the image's programs wrote it, so escaped."""
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    return for_terminal(text if len(text) <= SHOWN_OUTPUT else "...\n" + text[-SHOWN_OUTPUT:])


@rule(desc="Checking a minimized image with a traced test", level=LogLevel.DEBUG)
async def check_minimized(request: CheckRequest) -> CheckResult:
    replay = request.replay
    process = await Get(Process, SmithProcess, SmithProcess.of(
        list(replay.argv),
        description=f"Running {replay.test} on the minimized image {request.origin}",
        input_digest=replay.digest,
        timeout_seconds=replay.timeout,
    ))
    result = await Get(FallibleProcessResult, Process, _process(replay, process))
    if result.exit_code != 0:
        text = (result.stdout + result.stderr).decode("utf-8", "replace")
        hints = missing_hints(text)
        missing = ("Missing, by its output: " + for_terminal(", ".join(hints)) + ". Keep it with `paths` (a glob)"
                   if hints else "Its output names no missing file; keep what it needs with `paths`")
        raise SmithMinimizeTraceError(
            f"{request.origin}: the minimized image fails {replay.test}, which passed on the full "
            f"image under `trace`. {missing}, or make the test's workload use it.\n" + _output(result))
    return CheckResult(replay.test)


def rules():
    return collect_rules()
