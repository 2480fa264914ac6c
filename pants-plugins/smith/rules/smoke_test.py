"""smith_image_test -> `pants test`: build the image, run it once with smith's runtime through
`smith launch test`, and report the launcher's PASS/FAIL with the container's output."""
import dataclasses
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.goals.test import TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestEntries,
    DigestSubset,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    SourcesField,
    Targets,
    UnparsedAddressInputs,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.option.option_types import SkipOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.logging import LogLevel
from pants.util.strutil import help_text

from smith.rules.command import SmithCommandFieldSet
from smith.rules.tool import SmithCore, core_env
from smith.runtime import ZIPAPP_ONLY
from smith.target_types import SmithCommandTarget
from smith.test_targets import (
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


class SmithTestSubsystem(Subsystem):
    options_scope = "smith-test"
    name = "smith image tests"
    help = "How `pants test` and `pants run` start smith images (smith_image_test, smith_image)."

    skip = SkipOption("test")
    store = StrOption(
        default="/var/lib/smith",
        help=help_text(
            """
            The launcher's store on this machine: layers unpacked once per diff_id and shared by
            every test and run, the containers' directories and the uid/gid pool. Every parent
            directory must be searchable by others (o+x): containers in user namespaces walk it.
            """
        ),
    )
    runtime = StrOption(
        default="",
        help=help_text(
            """
            Empty (the default): smith's own runtime, packaged from this plugin like
            `dist/smith-runtime`. Otherwise the name or absolute path of another runc-compatible
            runtime on this machine, e.g. `runc`.
            """
        ),
    )
    run_network = StrOption(
        default="none",
        help=help_text(
            """
            The network of containers started by `pants run`: `none` (own namespace with only
            `lo`) or `host` (e.g. to reach a server the image runs).
            """
        ),
    )

    def validate_run_network(self) -> str:
        if self.run_network not in ("none", "host"):
            raise ValueError(f"[smith-test].run_network must be `none` or `host`, not {self.run_network!r}.")
        return self.run_network


# ----------------------------------------------------------------------------------------------
# What tests and runs share: the image layout, the runtime and how the runtime is installed
# ----------------------------------------------------------------------------------------------

RUNTIME_INPUT = "__smith_runtime/smith-runtime"
# What //:smith-runtime packs (root BUILD file); the same list gives the same cached Process.
RUNTIME_ONLY = list(ZIPAPP_ONLY)

# Runs as the Process itself, then execs the launcher. smith-runtime re-runs itself as the
# container's init under a mapped uid, which cannot reach the (0700) sandbox: so the zipapp is
# copied (once per content) next to the store, where every parent is o+x. Not being root is
# reported here in words, before a `mkdir` fails with a bare "Permission denied".
_INSTALL_RUNTIME = r"""
if [ "$(id -u)" != 0 ]; then
  echo "smith: running an image needs root (overlayfs mounts, a user namespace per container); run pants as root, e.g. with sudo" >&2
  exit 1
fi
source=$1 target=$2; shift 2
if [ -n "$source" ] && [ ! -f "$target" ]; then
  mkdir -p "$(dirname "$target")" && chmod 0711 "$(dirname "$target")"
  cp "$source" "$target.tmp.$$" && chmod 0755 "$target.tmp.$$" && mv -f "$target.tmp.$$" "$target" || exit 1
fi
exec "$@"
"""


def install_runtime_argv(source: str, target: str, argv: Tuple[str, ...]) -> Tuple[str, ...]:
    """`argv` run after the runtime zipapp `source` is installed at `target` ("" source: none)."""
    return ("/bin/sh", "-c", _INSTALL_RUNTIME, "smith-install-runtime", source, target, *argv)


@dataclass(frozen=True)
class SmithRuntime:
    """The runtime the launcher runs: the zipapp (when it is smith's own) and where it goes."""

    digest: Digest  # RUNTIME_INPUT, or empty for a machine runtime
    source: str  # path of the zipapp in the sandbox, "" for a machine runtime
    path: str  # --runtime of the launcher


def runtime_target() -> SmithCommandTarget:
    """A stand-in for the //:smith-runtime target of this repository's root BUILD file."""
    return SmithCommandTarget(
        {"module": "smith.runtime", "only": RUNTIME_ONLY, "output_path": "smith-runtime"},
        Address("", target_name="smith-runtime"),
    )


@rule(desc="Packaging the smith runtime for containers", level=LogLevel.DEBUG)
async def smith_runtime(subsystem: SmithTestSubsystem) -> SmithRuntime:
    if subsystem.runtime:
        return SmithRuntime(await Get(Digest, CreateDigest([])), "", subsystem.runtime)
    # The very package of //:smith-runtime (rules/command.py): one recipe, one cache entry.
    package = await Get(BuiltPackage, PackageFieldSet, SmithCommandFieldSet.create(runtime_target()))
    entries = await Get(DigestEntries, Digest, package.digest)
    fingerprint = entries[0].file_digest.fingerprint
    digest = await Get(Digest, AddPrefix(package.digest, RUNTIME_INPUT.rsplit("/", 1)[0]))
    store = subsystem.store.rstrip("/") or "/"
    return SmithRuntime(digest, RUNTIME_INPUT, f"{store}/runtime/smith-runtime-{fingerprint[:16]}")


@dataclass(frozen=True)
class ImageLayoutRequest:
    """The OCI layout that `pants package` makes of the target at `address` (for tests and runs)."""

    address: Address
    description_of_origin: str


@dataclass(frozen=True)
class ImageLayout:
    digest: Digest
    path: str


class SmithImageTargetError(ValueError):
    pass


@rule(desc="Building a smith image to run", level=LogLevel.DEBUG)
async def image_layout(request: ImageLayoutRequest) -> ImageLayout:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, request.description_of_origin)
    )
    field_sets = await Get(
        FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, [wrapped.target])
    )
    found = field_sets.collection[0]
    if len(found) != 1:
        raise SmithImageTargetError(
            f"{request.description_of_origin}: {request.address} is a `{wrapped.target.alias}`, which "
            "`pants package` does not turn into one image; name a smith_image (or smith_minimize)."
        )
    package = await Get(BuiltPackage, PackageFieldSet, found[0])
    layouts = [a.relpath for a in package.artifacts if a.relpath and not a.relpath.endswith(".tar")]
    if not layouts:
        raise SmithImageTargetError(
            f"{request.description_of_origin}: {request.address} packages no OCI image layout."
        )
    return ImageLayout(package.digest, layouts[0])


def launcher_options(
    store: str, runtime: str, env: Optional[dict], network: str, timeout: Optional[int]
) -> List[str]:
    """Options of `smith launch run|test` that tests and runs share."""
    argv = ["--store", store, "--runtime", runtime, "--network", network]
    for key, value in sorted((env or {}).items()):
        argv += ["--env", f"{key}={value}"]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    return argv


def container_command(command: Tuple[str, ...], args: Tuple[str, ...]) -> List[str]:
    """`command` replaces Entrypoint + Cmd; `args` alone replace Cmd (as the launcher's -- does)."""
    if command:
        return ["--whole-command", "--", *command, *args]
    return ["--", *args] if args else []


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
    core: SmithCore,
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
        ImageLayout, ImageLayoutRequest(images[0].address, f"the `image` field of {address}")
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
            "--expect-exit", str(field_set.expect_exit.value)]
    if field_set.read_files.value:
        argv += ["--read", _READ_DIR]
    if field_set.expect_stdout.value is not None:
        argv += ["--expect-stdout", field_set.expect_stdout.value]
    if field_set.expect_stderr.value is not None:
        argv += ["--expect-stderr", field_set.expect_stderr.value]
    argv += container_command(tuple(field_set.command.value or ()), tuple(field_set.args.value or ()))

    inputs = await Get(Digest, MergeDigests([layout.digest, runtime.digest, read_digest, core.sources]))
    process = await Get(
        Process,
        VenvPexProcess(
            core.pex,
            argv=argv,
            description=f"Running smith image test {address}",
            input_digest=inputs,
            extra_env=core_env(),
            # The container's own timeout, plus time to unpack new layers into the store.
            timeout_seconds=field_set.timeout.value + 120,
            cache_scope=(ProcessCacheScope.PER_SESSION if test_subsystem.force
                         else ProcessCacheScope.SUCCESSFUL),
            level=LogLevel.DEBUG,
        ),
    )
    process = dataclasses.replace(
        process, argv=install_runtime_argv(runtime.source, runtime.path, process.argv))
    result = await Get(FallibleProcessResult, Process, process)
    return TestResult.from_fallible_process_result(
        process_result=result, address=address, output_setting=test_subsystem.output
    )


def rules():
    return [*collect_rules(), *SmithImageTestRequest.rules()]
