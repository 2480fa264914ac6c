"""What `pants test` and `pants run` of images share: the image to run, smith's runtime (the very
package of //:smith-runtime) and how the launcher is started."""
import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import List, Optional, Tuple

from pants.engine.addresses import Address
from pants.core.goals.test import ShowOutput, TestResult
from pants.engine.fs import AddPrefix, CreateDigest, Digest, DigestContents, DigestEntries, DigestSubset, PathGlobs
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionMembership
from pants.util.logging import LogLevel

from smith.errors import for_terminal
from smith.launch.each_platform import SKIP_EXIT
from smith.oci.image_source import OCI_INDEX
from smith.plugin.rules.util.command import BuiltZipapp, SmithCommandFieldSet
from smith.plugin.rules.util.image import BuiltSmithImage, SmithImageSourceFieldSet, image_source_field_set
from smith.plugin.subsystems import SmithTestSubsystem
from smith.plugin.target_types.command import SmithCommandTarget

# ----------------------------------------------------------------------------------------------
# What tests and runs share: the image layout, the runtime and how the runtime is installed
# ----------------------------------------------------------------------------------------------

logger = logging.getLogger(__name__)

RUNTIME_INPUT = "__smith_runtime/smith-runtime"

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
    # No `only`: the command rule packs smith.runtime.ZIPAPP_ONLY, as for //:smith-runtime.
    return SmithCommandTarget(
        {"module": "smith.runtime", "output_path": "smith-runtime"},
        Address("", target_name="smith-runtime"),
    )


@rule(desc="Packaging the smith runtime for containers", level=LogLevel.DEBUG)
async def smith_runtime(subsystem: SmithTestSubsystem) -> SmithRuntime:
    if subsystem.runtime:
        return SmithRuntime(await Get(Digest, CreateDigest([])), "", subsystem.runtime)
    # The very package of //:smith-runtime (rules/command.py): one recipe, one cache entry.
    package = await Get(BuiltZipapp, SmithCommandFieldSet, SmithCommandFieldSet.create(runtime_target()))
    entries = await Get(DigestEntries, Digest, package.digest)
    fingerprint = entries[0].file_digest.fingerprint
    digest = await Get(Digest, AddPrefix(package.digest, RUNTIME_INPUT.rsplit("/", 1)[0]))
    store = subsystem.store.rstrip("/") or "/"
    return SmithRuntime(digest, RUNTIME_INPUT, f"{store}/runtime/smith-runtime-{fingerprint[:16]}")


class SmithImageTargetError(ValueError):
    pass


@dataclass(frozen=True)
class ImageToRunRequest:
    """The image built from the target at `address` (a test's `image`, the target of `pants run`)."""

    address: Address
    description_of_origin: str


@rule(desc="Building a smith image to run", level=LogLevel.DEBUG)
async def image_to_run(request: ImageToRunRequest, union_membership: UnionMembership) -> BuiltSmithImage:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, request.description_of_origin)
    )
    field_set = image_source_field_set(wrapped.target, union_membership, request.description_of_origin)
    return await Get(BuiltSmithImage, SmithImageSourceFieldSet, field_set)


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


def platform_options(subsystem: SmithTestSubsystem, many: bool) -> List[str]:
    """--emulation, and --platform: each of [smith-test].platforms (tests) or .run_platform (run)."""
    argv = ["--emulation", subsystem.emulation.value]
    chosen = list(subsystem.platforms) if many else [subsystem.run_platform] if subsystem.run_platform else []
    for platform in chosen:
        argv += ["--platform", platform]
    return argv


async def platform_count(layout: BuiltSmithImage) -> int:
    """How many platforms the image has (each gets a test's timeout); 1 when unsure."""
    index_path = f"{layout.path}/index.json"
    contents = await Get(DigestContents, Digest,
                         await Get(Digest, DigestSubset(layout.digest, PathGlobs([index_path]))))
    try:
        entries = json.loads(contents[0].content)["manifests"]
        top = [e for e in entries if e.get("mediaType") == OCI_INDEX]
        if len(top) != 1:
            return 1
        blob = f"{layout.path}/blobs/sha256/{top[0]['digest'].split(':', 1)[1]}"
        index = await Get(DigestContents, Digest,
                          await Get(Digest, DigestSubset(layout.digest, PathGlobs([blob]))))
        return max(1, len(json.loads(index[0].content)["manifests"]))
    except (IndexError, KeyError, ValueError, TypeError, AttributeError):
        return 1  # the launcher reports what is wrong with the image


def launcher_test_result(result: FallibleProcessResult, address: Address, output: ShowOutput) -> TestResult:
    """The launcher's SKIP_EXIT (a platform could not run here) is a skipped test: Pants 2.17
    has no such status, so it is a result without exit code (neither passed nor failed, like
    "no tests found") plus a warning with the launcher's reason."""
    if result.exit_code != SKIP_EXIT:
        return TestResult.from_fallible_process_result(process_result=result, address=address,
                                                       output_setting=output)
    stdout = result.stdout.decode(errors="replace")
    reasons = [line for line in stdout.splitlines() if line.startswith(("SKIP ", "PASS "))]
    # The launcher escapes what it writes, but a container's output shares its stdout: a line of
    # that which starts with SKIP or PASS is the image's programs' text.
    logger.warning(f"{address} SKIPPED (not passed):\n" + for_terminal("\n".join(reasons)))
    return dataclasses.replace(
        TestResult.from_fallible_process_result(process_result=result, address=address,
                                                output_setting=output),
        exit_code=None,
    )


def rules():
    return collect_rules()
