"""smith_service_test and smith_structure_test -> `pants test`.

Both build their images as `pants package` does (BuiltSmithImage through ImageToRunRequest, as
smith_image_test), write the core's JSON spec into the sandbox and run one SmithProcess:
`smith launch service --spec ...` (with smith's runtime installed as for smith_image_test) or
`smith launch structure --spec ...` (no root, no runtime). The spec is checked here with the
core's validator first, so a mistake in a BUILD file is an error naming the target and field.
"""
import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Dict, Optional

from pants.core.goals.test import TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestSubset,
    FileContent,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import InvalidFieldException, SourcesField, Targets, UnparsedAddressInputs
from pants.util.logging import LogLevel

from smith.launch import service_spec, structure
from smith.plugin.rules.util.image import BuiltSmithImage
from smith.plugin.rules.util.launch import (
    ImageToRunRequest,
    SmithImageTargetError,
    SmithRuntime,
    install_runtime_argv,
    platform_count,
    platform_options,
    launcher_test_result,
)
from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.subsystems import SmithTestSubsystem
from smith.plugin.target_types import service as t
from smith.plugin.target_types.test import (
    SmithTestArgsField,
    SmithTestCommandField,
    SmithTestEnvField,
    SmithTestReadFilesField,
    SmithTestReadRootField,
)

SPEC = "__smith_test/spec.json"
READ_DIR = "__read"
# Time on top of the test's own timeout: unpacking new layers into the store, starting Python.
SETUP_SECONDS = 120


def _cache_scope(test_subsystem: TestSubsystem) -> ProcessCacheScope:
    # As smith_image_test (and Pants' shell tests): a success is cached, a failure reruns.
    return ProcessCacheScope.PER_SESSION if test_subsystem.force else ProcessCacheScope.SUCCESSFUL


async def _one_image(field, address: Address) -> BuiltSmithImage:
    images = await Get(Targets, UnparsedAddressInputs, field.to_unparsed_address_inputs())
    if len(images) != 1:
        raise SmithImageTargetError(
            f"{address}: `{field.alias}` names {len(images)} targets; give exactly one image."
        )
    return await Get(BuiltSmithImage, ImageToRunRequest(images[0].address, f"{address}: field `{field.alias}`"))


async def _read_dir(address: Address, read_files: SmithTestReadFilesField,
                    read_root: SmithTestReadRootField) -> Digest:
    """The `read_files` under READ_DIR, relative to `read_root` (as smith_image_test mounts them)."""
    targets = await Get(Targets, UnparsedAddressInputs, read_files.to_unparsed_address_inputs())
    sources = await Get(
        SourceFiles, SourceFilesRequest(x[SourcesField] for x in targets if x.has_field(SourcesField))
    )
    root = "/".join(p for p in (address.spec_path, (read_root.value or "").strip("/")) if p)
    outside = [f for f in sources.files if not f.startswith(root + "/")] if root else []
    if outside:
        raise SmithImageTargetError(
            f"{address}: `read_files` holds {outside[0]}, which is not under `read_root` "
            f"({root}/); move it there or set `read_root` to the directory that stands for /read."
        )
    digest = sources.snapshot.digest
    if root and targets:
        digest = await Get(Digest, RemovePrefix(
            await Get(Digest, DigestSubset(digest, PathGlobs([f"{root}/**"]))), root))
    return await Get(Digest, AddPrefix(digest, READ_DIR))


# ----------------------------------------------------------------------------------------------
# smith_service_test
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmithServiceTestFieldSet(TestFieldSet):
    required_fields = (t.ServiceImageField,)

    image: t.ServiceImageField
    command: SmithTestCommandField
    args: SmithTestArgsField
    env: SmithTestEnvField
    read_files: SmithTestReadFilesField
    read_root: SmithTestReadRootField
    ready_port: t.ReadyPortField
    ready_log: t.ReadyLogField
    ready_timeout: t.ReadyTimeoutField
    tcp_checks: t.TcpChecksField
    http_checks: t.HttpChecksField
    client: t.ClientImageField
    client_command: t.ClientCommandField
    client_args: t.ClientArgsField
    client_env: t.ClientEnvField
    client_expect_exit: t.ClientExpectExitField
    client_expect_stdout: t.ClientExpectStdoutField
    client_expect_stderr: t.ClientExpectStderrField
    stop_signal: t.StopSignalField
    expect_stop_exit: t.ExpectStopExitField
    stop_timeout: t.StopTimeoutField
    restart: t.RestartField
    after_restart: t.AfterRestartField
    timeout: t.ServiceTimeoutField


class SmithServiceTestRequest(TestRequest):
    tool_subsystem = SmithTestSubsystem
    field_set_type = SmithServiceTestFieldSet


def service_spec_of(fs: SmithServiceTestFieldSet, layout: str, client_layout: Optional[str],
                    read: bool) -> Dict[str, Any]:
    """The core's spec (smith/launch/service_spec.py), checked; errors name target and field."""
    spec: Dict[str, Any] = {
        "name": str(fs.address),
        "layout": layout,
        "command": list(fs.command.value or ()),
        "args": list(fs.args.value or ()),
        "env": dict(fs.env.value or {}),
        "read": READ_DIR if read else None,
        "ready_port": fs.ready_port.value,
        "ready_log": fs.ready_log.value,
        "ready_timeout": fs.ready_timeout.value,
        "tcp_checks": fs.tcp_checks.json() or [],
        "http_checks": fs.http_checks.json() or [],
        "stop_signal": fs.stop_signal.value,
        "expect_stop_exit": fs.expect_stop_exit.value,
        "stop_timeout": fs.stop_timeout.value,
        "restart": fs.restart.value,
        "after_restart": fs.after_restart.json() or [],
        "timeout": fs.timeout.value,
    }
    if client_layout is not None:
        client: Dict[str, Any] = {"layout": client_layout, "command": list(fs.client_command.value or ()),
                                  "args": list(fs.client_args.value or ()), "env": dict(fs.client_env.value or {}),
                                  "expect_exit": fs.client_expect_exit.value}
        for key, field in (("expect_stdout", fs.client_expect_stdout), ("expect_stderr", fs.client_expect_stderr)):
            if field.value is not None:
                client[key] = field.value
        spec["client"] = client
    else:
        used = [f.alias for f in (fs.client_command, fs.client_args, fs.client_env, fs.client_expect_stdout,
                                  fs.client_expect_stderr) if f.value]
        if used:
            raise InvalidFieldException(
                f"{fs.address}: `{used[0]}` is set but there is no `client` image to run; "
                "set `client` to a smith_image target (e.g. a redis-cli image)."
            )
    try:
        service_spec.validate(spec)
    except service_spec.SpecError as e:
        field = e.field.split("[")[0].split(".")[0]
        field = {"client": "client_*", "spec": "the target"}.get(field, field)
        raise InvalidFieldException(f"The `{field}` field of {fs.address}: {e}.")
    return spec


@rule(desc="Running a smith service test", level=LogLevel.DEBUG)
async def run_service_test(
    batch: SmithServiceTestRequest.Batch[SmithServiceTestFieldSet, Any],
    test_subsystem: TestSubsystem,
    subsystem: SmithTestSubsystem,
    runtime: SmithRuntime,
) -> TestResult:
    fs = batch.single_element
    image = await _one_image(fs.image, fs.address)
    client = await _one_image(fs.client, fs.address) if fs.client.value else None
    read_digest = await _read_dir(fs.address, fs.read_files, fs.read_root)
    spec = service_spec_of(fs, image.path, client.path if client else None, bool(fs.read_files.value))
    spec_digest = await Get(Digest, CreateDigest([
        FileContent(SPEC, json.dumps(spec, sort_keys=True, indent=1).encode())]))
    inputs = await Get(Digest, MergeDigests([
        image.digest, *([client.digest] if client else []), read_digest, spec_digest, runtime.digest]))
    process = await Get(
        Process,
        SmithProcess,
        SmithProcess.of(
            ["launch", "service", "--spec", SPEC, "--store", subsystem.store, "--runtime", runtime.path,
             *platform_options(subsystem, many=True)],
            description=f"Running smith service test {fs.address}",
            input_digest=inputs,
            timeout_seconds=(fs.timeout.value + SETUP_SECONDS) * await platform_count(image),
            cache_scope=_cache_scope(test_subsystem),
            level=LogLevel.DEBUG,
        ),
    )
    process = dataclasses.replace(
        process, argv=install_runtime_argv(runtime.source, runtime.path, process.argv))
    result = await Get(FallibleProcessResult, Process, process)
    return launcher_test_result(result, fs.address, test_subsystem.output)


# ----------------------------------------------------------------------------------------------
# smith_structure_test
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmithStructureTestFieldSet(TestFieldSet):
    required_fields = (t.StructureImageField,)

    image: t.StructureImageField
    paths_present: t.PathsPresentField
    paths_absent: t.PathsAbsentField
    no_shell: t.NoShellField
    file_owner: t.FileOwnerField
    no_setuid: t.NoSetuidField
    no_world_writable: t.NoWorldWritableField
    expect_config: t.ExpectConfigField


class SmithStructureTestRequest(TestRequest):
    tool_subsystem = SmithTestSubsystem
    field_set_type = SmithStructureTestFieldSet


def structure_spec_of(fs: SmithStructureTestFieldSet, layout: str) -> Dict[str, Any]:
    spec = {
        "name": str(fs.address),
        "layout": layout,
        "paths_present": list(fs.paths_present.value or ()),
        "paths_absent": list(fs.paths_absent.value or ()),
        "no_shell": fs.no_shell.value,
        "file_owner": fs.file_owner.value,
        "no_setuid": fs.no_setuid.value,
        "no_world_writable": fs.no_world_writable.value,
        "config": fs.expect_config.json() or {},
    }
    structure.validate(spec)  # the fields checked themselves: this cannot fail
    return spec


@rule(desc="Running a smith structure test", level=LogLevel.DEBUG)
async def run_structure_test(
    batch: SmithStructureTestRequest.Batch[SmithStructureTestFieldSet, Any],
    test_subsystem: TestSubsystem,
    subsystem: SmithTestSubsystem,
) -> TestResult:
    fs = batch.single_element
    image = await _one_image(fs.image, fs.address)
    spec = structure_spec_of(fs, image.path)
    spec_digest = await Get(Digest, CreateDigest([
        FileContent(SPEC, json.dumps(spec, sort_keys=True, indent=1).encode())]))
    process = await Get(
        Process,
        SmithProcess,
        SmithProcess.of(
            ["launch", "structure", "--spec", SPEC,
             *(a for p in subsystem.platforms for a in ("--platform", p))],
            description=f"Running smith structure test {fs.address}",
            input_digest=await Get(Digest, MergeDigests([image.digest, spec_digest])),
            timeout_seconds=SETUP_SECONDS * await platform_count(image),
            cache_scope=_cache_scope(test_subsystem),
            level=LogLevel.DEBUG,
        ),
    )
    result = await Get(FallibleProcessResult, Process, process)
    return launcher_test_result(result, fs.address, test_subsystem.output)


def rules():
    return [*collect_rules(), *SmithServiceTestRequest.rules(), *SmithStructureTestRequest.rules()]
