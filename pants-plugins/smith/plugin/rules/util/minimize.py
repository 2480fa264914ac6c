"""smith_minimize -> `smith minimize` (cached) -> `smith layer --tar` -> `smith image`: an OCI layout.

With `trace`, each named test is first traced on the full image and the traces go to `smith
minimize --trace`; the tests then run on the assembled image, which must pass them
(rules/util/minimize_trace.py).

The same field set is a SmithTreeFieldSet and SmithRootFieldSet member
(its minimized tree) and a SmithImageSourceFieldSet member (-> BuiltSmithImage), so it can stand
wherever a smith_image's result is used (a `base`, a test's image, another smith_minimize).
"""
import json
import os
from dataclasses import dataclass
from typing import List, Tuple

from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.engine.addresses import Address
from pants.engine.fs import (
    EMPTY_DIGEST,
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    FileContent,
    GlobMatchErrorBehavior,
    MergeDigests,
    PathGlobs,
    Snapshot,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSet,
    HydratedSources,
    HydrateSourcesRequest,
    SourcesField,
    Targets,
    UnparsedAddressInputs,
)
from pants.engine.unions import UnionMembership, UnionRule
from pants.util.logging import LogLevel

from smith.plugin.target_types.minimize import (
    is_address,
    SmithMinimizeCmdField,
    SmithMinimizeDockerArchiveField,
    SmithMinimizeEntrypointField,
    SmithMinimizeEnvField,
    SmithMinimizeExcludesField,
    SmithMinimizeExposedPortsField,
    SmithMinimizeImageField,
    SmithMinimizeImageTagField,
    SmithMinimizeLabelsField,
    SmithMinimizeNssField,
    SmithMinimizeOutputPathField,
    SmithMinimizePathsField,
    SmithMinimizePlatformField,
    SmithMinimizePythonSourcelessField,
    SmithMinimizeTagField,
    SmithMinimizeTraceField,
    SmithMinimizeUserField,
    SmithMinimizeWorkdirField,
)
from smith.plugin.rules.util.image import (
    BuiltSmithImage,
    SmithImageSourceFieldSet,
    docker_archive_outputs,
    image_source_field_set,
)
from smith.plugin.rules.util import minimize_trace
from smith.plugin.rules.util.minimize_trace import CheckRequest, CheckResult, Replay, ReplayRequest, TraceRequest, TraceResult
from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.rules.util.tree import SmithRootFieldSet, SmithTree, SmithTreeFieldSet


class SmithMinimizeError(ValueError):
    pass


@dataclass(frozen=True)
class SmithMinimizeFieldSet(FieldSet):
    required_fields = (SmithMinimizeImageField,)

    image: SmithMinimizeImageField
    image_tag: SmithMinimizeImageTagField
    tag: SmithMinimizeTagField
    entrypoint: SmithMinimizeEntrypointField
    cmd: SmithMinimizeCmdField
    paths: SmithMinimizePathsField
    trace: SmithMinimizeTraceField
    excludes: SmithMinimizeExcludesField
    python_sourceless: SmithMinimizePythonSourcelessField
    nss: SmithMinimizeNssField
    user: SmithMinimizeUserField
    env: SmithMinimizeEnvField
    workdir: SmithMinimizeWorkdirField
    labels: SmithMinimizeLabelsField
    exposed_ports: SmithMinimizeExposedPortsField
    docker_archive: SmithMinimizeDockerArchiveField
    output_path: SmithMinimizeOutputPathField
    platform: SmithMinimizePlatformField

    def platform_argv(self) -> List[str]:
        """--platform for `smith minimize` and `smith image` (left out for linux/amd64, the
        default of both: argv, and so the cache keys, stay as they were)."""
        value = self.platform.value
        return [] if value in (None, SmithMinimizePlatformField.default) else ["--platform", value]

    def owner(self) -> "tuple[str, int, int]":
        return self.user.parsed(self.address)


@dataclass(frozen=True)
class SourceImage:
    digest: Digest  # the image under `path`
    path: str


@dataclass(frozen=True)
class MinimizedTree:
    digest: Digest  # tree.tar and config.json (smith image --config form, overrides applied)


@rule(desc="Finding a smith_minimize source image", level=LogLevel.DEBUG)
async def source_image(field_set: SmithMinimizeFieldSet, union_membership: UnionMembership) -> SourceImage:
    address = field_set.address
    value = field_set.image.value.rstrip("/")
    if not is_address(value):
        # A path in the repo: an image tar, or an OCI layout directory (all files below it).
        path = os.path.normpath(os.path.join(address.spec_path, value))
        if path.startswith("../") or path == "..":
            raise SmithMinimizeError(f"{address}: `image` path {value!r} leaves the repository.")
        snapshot = await Get(
            Snapshot,
            PathGlobs([path, f"{path}/**"], glob_match_error_behavior=GlobMatchErrorBehavior.ignore),
        )
        if snapshot.files:
            return SourceImage(snapshot.digest, path)
    targets = await Get(
        Targets,
        UnparsedAddressInputs([value], owning_address=address, description_of_origin=f"{address} `image`"),
    )
    target = targets[0]
    if target.has_field(FileSourceField) or target.has_field(ResourceSourceField):
        hydrated = await Get(
            HydratedSources,
            HydrateSourcesRequest(target[SourcesField], for_sources_types=(FileSourceField, ResourceSourceField)),
        )
        if len(hydrated.snapshot.files) != 1:
            raise SmithMinimizeError(
                f"{address}: `image` target {target.address} holds {len(hydrated.snapshot.files)} "
                "files; name one image tar (a `file` target)."
            )
        return SourceImage(hydrated.snapshot.digest, hydrated.snapshot.files[0])
    built = await Get(
        BuiltSmithImage,
        SmithImageSourceFieldSet,
        image_source_field_set(target, union_membership, f"{address}: field `image`"),
    )
    return SourceImage(built.digest, built.path)


@dataclass(frozen=True)
class TraceTests:
    addresses: Tuple[Address, ...]  # sorted


@rule(desc="Finding the tests a smith_minimize traces", level=LogLevel.DEBUG)
async def trace_tests(field_set: SmithMinimizeFieldSet) -> TraceTests:
    if not field_set.trace.value:
        return TraceTests(())
    tests = await Get(Targets, UnparsedAddressInputs, field_set.trace.to_unparsed_address_inputs())
    for target in tests:
        minimize_trace.check_test_target(target, field_set.address)
    return TraceTests(tuple(sorted({t.address for t in tests})))


@dataclass(frozen=True)
class TraceRequests:
    requests: Tuple[TraceRequest, ...]  # one per `trace` test, in TraceTests' order


@rule(desc="Preparing the traces of a smith_minimize", level=LogLevel.DEBUG)
async def trace_requests(field_set: SmithMinimizeFieldSet) -> TraceRequests:
    """Each `trace` test replayed on the full image, traced for the target's `platform`."""
    tests = (await Get(TraceTests, SmithMinimizeFieldSet, field_set)).addresses
    if not tests:
        return TraceRequests(())
    source = await Get(SourceImage, SmithMinimizeFieldSet, field_set)
    layout = source.path + (f":{field_set.image_tag.value}" if field_set.image_tag.value else "")
    full = BuiltSmithImage(source.digest, layout, "")
    replays = await MultiGet(Get(Replay, ReplayRequest(t, field_set.address, full)) for t in tests)
    platform = field_set.platform.value or SmithMinimizePlatformField.default
    return TraceRequests(tuple(
        TraceRequest(r, source.path, field_set.address, f"traces/{i}.json", platform)
        for i, r in enumerate(replays)))


async def _traces(field_set: SmithMinimizeFieldSet, argv: List[str]) -> Digest:
    """Trace each `trace` test on the full image (cached Processes); adds `--trace` to argv."""
    requests = (await Get(TraceRequests, SmithMinimizeFieldSet, field_set)).requests
    if not requests:
        return EMPTY_DIGEST
    results = await MultiGet(Get(TraceResult, TraceRequest, r) for r in requests)
    for r in requests:
        argv += ["--trace", r.output]
    return await Get(Digest, MergeDigests(r.digest for r in results))


@rule(desc="Minimizing an image", level=LogLevel.DEBUG)
async def minimize_tree(field_set: SmithMinimizeFieldSet) -> MinimizedTree:
    address = field_set.address
    name, uid, gid = field_set.owner()
    await Get(TraceTests, SmithMinimizeFieldSet, field_set)  # a wrong `trace` fails before any build
    source = await Get(SourceImage, SmithMinimizeFieldSet, field_set)
    ref = f"in/{source.path}" + (f":{field_set.image_tag.value}" if field_set.image_tag.value else "")
    argv = ["minimize", "--output", "tree.tar", "--config-out", "config.json"]
    for arg in field_set.entrypoint.value or ():
        argv.append(f"--entrypoint={arg}")
    for arg in field_set.cmd.value or ():
        argv.append(f"--cmd={arg}")
    for glob in field_set.paths.value or ():
        argv += ["--path", glob]
    for glob in field_set.excludes.value or ():
        argv += ["--exclude", glob]
    for glob in field_set.python_sourceless.value or ():
        argv += ["--python-sourceless", glob]
    if field_set.nss.value:
        argv += ["--nss", "--user", f"{name}:{uid}:{gid}"]
    for k, v in sorted((field_set.env.value or {}).items()):
        argv.append(f"--env={k}={v}")
    trace_digest = await _traces(field_set, argv)
    argv += field_set.platform_argv()
    argv.append(ref)
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Minimizing {field_set.image.value} ({address})",
            input_digest=await Get(Digest, MergeDigests([
                await Get(Digest, AddPrefix(source.digest, "in")), trace_digest])),
            output_files=["tree.tar", "config.json"],
        ),
    )
    # Target overrides of what the image keeps (bookkeeping on a small JSON file).
    contents = await Get(DigestContents, DigestSubset(result.output_digest, PathGlobs(["config.json"])))
    config = json.loads(contents[0].content)
    config["user"] = f"{uid}:{gid}"
    if field_set.workdir.value:
        config["workdir"] = field_set.workdir.value
    if field_set.labels.value:
        config["labels"] = {**config.get("labels", {}), **dict(field_set.labels.value)}
    if field_set.exposed_ports.value is not None:
        config["exposed_ports"] = list(field_set.exposed_ports.value)
    config_digest = await Get(
        Digest,
        CreateDigest([FileContent("config.json", json.dumps(config, sort_keys=True, separators=(",", ":")).encode())]),
    )
    tree = await Get(Digest, DigestSubset(result.output_digest, PathGlobs(["tree.tar"])))
    return MinimizedTree(await Get(Digest, MergeDigests([tree, config_digest])))


@rule(desc="Minimized tree", level=LogLevel.DEBUG)
async def minimized_tree(field_set: SmithMinimizeFieldSet) -> SmithTree:
    minimized = await Get(MinimizedTree, SmithMinimizeFieldSet, field_set)
    return SmithTree(await Get(Digest, DigestSubset(minimized.digest, PathGlobs(["tree.tar"]))), "tree.tar")


@rule(desc="Assembling a minimized image", level=LogLevel.DEBUG)
async def minimized_image(field_set: SmithMinimizeFieldSet) -> BuiltSmithImage:
    address = field_set.address
    _, uid, gid = field_set.owner()
    minimized = await Get(MinimizedTree, SmithMinimizeFieldSet, field_set)
    layer = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            ["layer", "--output", "layer", "--uid", str(uid), "--gid", str(gid), "--tar", "tree.tar"],
            description=f"Building the layer of {address}",
            input_digest=await Get(Digest, DigestSubset(minimized.digest, PathGlobs(["tree.tar"]))),
            output_directories=["layer"],
        ),
    )
    out = field_set.output_path.value_or_default(file_ending=None)
    argv = ["image", "--output", out, "--tag", field_set.tag.value, "--config", "config.json",
            "--layer", "layer", "--uid", str(uid), "--gid", str(gid), *field_set.platform_argv()]
    archive_argv, output_files = docker_archive_outputs(out, field_set.docker_archive.value)
    argv += archive_argv
    config = await Get(Digest, DigestSubset(minimized.digest, PathGlobs(["config.json"])))
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Assembling minimized image {address}",
            input_digest=await Get(Digest, MergeDigests([layer.output_digest, config])),
            output_directories=[out],
            output_files=output_files,
        ),
    )
    built = BuiltSmithImage(result.output_digest, out, result.stdout.decode().strip())
    # The tests that were traced must pass on the result too (or the build fails naming why).
    tests = (await Get(TraceTests, SmithMinimizeFieldSet, field_set)).addresses
    replays = await MultiGet(Get(Replay, ReplayRequest(t, address, built)) for t in tests)
    await MultiGet(Get(CheckResult, CheckRequest(r, address)) for r in replays)
    return built


def rules():
    return [
        *collect_rules(),
        *minimize_trace.rules(),
        UnionRule(SmithTreeFieldSet, SmithMinimizeFieldSet),
        UnionRule(SmithRootFieldSet, SmithMinimizeFieldSet),
        UnionRule(SmithImageSourceFieldSet, SmithMinimizeFieldSet),
    ]
