"""smith_packages -> one merged package tree, read ONLY from the lockfile.

lockfile -> `smith extract --url` per package (one cached Process that downloads, checks the
sha256 and size, and extracts; the download goes through the `smith_downloads` named cache) ->
one merged tree tar (overlaps between packages are an error naming both). Downloading inside
the Process, not with Pants' DownloadFile, means a machine with a warm remote cache fetches
no package at all: the Process key is the pin itself.
The repository itself is only read by `generate-lockfiles` (rules/packages_lock.py) and
`smith-outdated` (rules/packages_outdated.py).
"""
import json
import posixpath
from dataclasses import dataclass
from typing import Any, Dict, Tuple

from pants.engine.addresses import Address
from pants.engine.fs import (
    EMPTY_DIGEST,
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    FileContent,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import ProcessExecutionFailure, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import Targets, UnparsedAddressInputs
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from smith.plugin.target_types.packages import (
    SmithPackagesExcludesField,
    SmithPackagesLockfileField,
    SmithPackagesPackagesField,
    SmithPackagesRepositoryField,
    SmithPackagesResolveField,
    SmithRepositoryArchitecturesField,
    SmithRepositoryComponentsField,
    SmithRepositoryKeyringField,
    SmithRepositoryKindField,
    SmithRepositorySuitesField,
    SmithRepositoryTarget,
    SmithRepositoryTrustedField,
    SmithRepositoryUrlField,
)
from smith.errors import SmithError, for_terminal
from smith import platforms as platforms
from smith.packages import lockfile, repo_config
from smith.plugin.rules.util.process import SmithProcess
from smith.text import printable
from smith.plugin.rules.util.tree import (
    PackageTree,
    SmithPackagesOrigin,
    SmithRootFieldSet,
    SmithTree,
    SmithTreeFieldSet,
)


class SmithPackagesError(ValueError):
    pass


def regenerate_hint(resolve: str) -> str:
    return f"run `./pants generate-lockfiles --resolve={resolve}`"


# ----------------------------------------------------------------------------------------------
# The repository a smith_packages target points at
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepositoryRequest:
    field: SmithPackagesRepositoryField
    owner: Address


@dataclass(frozen=True)
class ResolvedRepository:
    """REPO.json for `smith lock` / `smith outdated` (keyring relative to the sandbox root)."""

    address: Address
    config_json: str
    keyring: Digest  # the keyring file under `keyring/`, or EMPTY_DIGEST

    @property
    def config(self) -> Dict[str, Any]:
        return json.loads(self.config_json)

    def canonical(self) -> Dict[str, Any]:
        """What `smith lock` records as the lockfile's "repository"."""
        try:
            return repo_config.from_dict(self.config, str(self.address)).to_json()
        except SmithError as e:
            raise SmithPackagesError(str(e)) from None


@rule(desc="Reading a smith_repository", level=LogLevel.DEBUG)
async def resolve_repository(request: RepositoryRequest) -> ResolvedRepository:
    targets = await Get(Targets, UnparsedAddressInputs, request.field.to_unparsed_address_inputs())
    target = targets[0]
    if not isinstance(target, SmithRepositoryTarget):
        raise SmithPackagesError(
            f"{request.owner}: `repository` must name a smith_repository, but {target.address} "
            f"is a `{target.alias}`."
        )
    kind = target[SmithRepositoryKindField].value
    config: Dict[str, Any] = {
        "kind": kind,
        "url": target[SmithRepositoryUrlField].value,
        "architectures": target[SmithRepositoryArchitecturesField].for_kind(kind),
    }
    if kind == "deb":
        config["suites"] = list(target[SmithRepositorySuitesField].value or ())
        config["components"] = list(target[SmithRepositoryComponentsField].value or ())
    # rpm without keyring is trusted by default in the core (checksums only); keep that default.
    if target[SmithRepositoryTrustedField].value or kind == "deb":
        config["trusted"] = bool(target[SmithRepositoryTrustedField].value)
    keyring = EMPTY_DIGEST
    keyring_rel = target[SmithRepositoryKeyringField].value
    if keyring_rel:
        path = posixpath.normpath(posixpath.join(target.address.spec_path, keyring_rel))
        contents = await Get(DigestContents, PathGlobs([path]))
        if not contents:
            raise SmithPackagesError(
                f"{target.address}: the `keyring` file {path} does not exist; give a path "
                "relative to the BUILD file's directory."
            )
        sandbox_path = f"keyring/{posixpath.basename(path)}"
        keyring = await Get(Digest, CreateDigest([FileContent(sandbox_path, contents[0].content)]))
        config["keyring"] = sandbox_path
    return ResolvedRepository(target.address, json.dumps(config, sort_keys=True), keyring)


async def repository_inputs(repo: ResolvedRepository) -> Digest:
    """repo.json + keyring, as the sandbox of `smith lock` / `smith outdated` wants them."""
    config = await Get(Digest, CreateDigest([FileContent("repo.json", repo.config_json.encode())]))
    return await Get(Digest, MergeDigests([config, repo.keyring]))


# ----------------------------------------------------------------------------------------------
# smith_packages -> tree
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmithPackagesFieldSet(SmithTreeFieldSet):
    required_fields = (SmithPackagesPackagesField,)

    repository: SmithPackagesRepositoryField
    packages: SmithPackagesPackagesField
    excludes: SmithPackagesExcludesField
    resolve: SmithPackagesResolveField
    lockfile: SmithPackagesLockfileField

    @property
    def resolve_name(self) -> str:
        return self.resolve.name_for(self.address)

    @property
    def lockfile_path(self) -> str:
        return self.lockfile.path_for(self.address, self.resolve_name)

    def request(self) -> Dict[str, Any]:
        """The lockfile's "request" this target must match (as `smith lock` records it)."""
        return lockfile.request(self.packages.value or (), self.excludes.value or ())

    def repository_request(self) -> "RepositoryRequest":
        return RepositoryRequest(self.repository, self.address)


@dataclass(frozen=True)
class PackagesForPlatform:
    """A smith_packages tree from the pins of one platform's architecture."""

    field_set: SmithPackagesFieldSet
    platform: str


@dataclass(frozen=True)
class BuiltSmithPackages:
    """The merged tree (which carries its origin: the lockfile and every package's own tree)."""

    tree: SmithTree

    @property
    def origin(self) -> SmithPackagesOrigin:
        return self.tree.origins[0]


def check_lock_matches(field_set: SmithPackagesFieldSet, lock: Dict[str, Any],
                       repository: Dict[str, Any]) -> None:
    """The lockfile must have been generated from this very BUILD target."""
    where = f"{field_set.address}: the lockfile {field_set.lockfile_path}"
    hint = regenerate_hint(field_set.resolve_name)
    for key, want, what in (("request", field_set.request(), "`packages`/`excludes` fields"),
                            ("repository", repository, "smith_repository")):
        if lock.get(key) != want:
            raise SmithPackagesError(
                f"{where} does not match the target's {what} (lockfile: {json.dumps(lock.get(key), sort_keys=True)}, "
                f"BUILD: {json.dumps(want, sort_keys=True)}); {hint} to update it."
            )


def parse_lock(field_set: SmithPackagesFieldSet, content: bytes) -> Dict[str, Any]:
    hint = regenerate_hint(field_set.resolve_name)
    try:
        return lockfile.loads(content, f"{field_set.address}: the lockfile {field_set.lockfile_path}", hint)
    except SmithError as e:
        raise SmithPackagesError(str(e)) from None


@dataclass(frozen=True)
class Pin:
    """One locked package, with where it came from (for error messages)."""

    pin: lockfile.Pin
    owner: Address
    lockfile: str
    resolve: str


def pins_of(field_set: SmithPackagesFieldSet, lock: Dict[str, Any], platform: str = platforms.DEFAULT) -> Tuple[Pin, ...]:
    what = f"{field_set.address}: the lockfile {field_set.lockfile_path}"
    try:
        arch = platforms.get(platform).repo_arch(lock["repository"].get("kind"))
        pins = lockfile.pins(lock, what, regenerate_hint(field_set.resolve_name), architecture=arch)
    except SmithError as e:
        raise SmithPackagesError(str(e)) from None
    return tuple(Pin(p, field_set.address, field_set.lockfile_path, field_set.resolve_name) for p in pins)


# Downloaded packages, named by sha256, shared by every extract on this machine (not part of keys).
DOWNLOAD_CACHE = "smith_downloads"
_DOWNLOAD_CACHE_DIR = ".cache/smith_downloads"


@rule(desc="Fetching and extracting a locked package", level=LogLevel.DEBUG)
async def fetch_and_extract(located: Pin) -> PackageTree:
    pin = located.pin
    argv = ["extract", "--output", "tree.tar", "--sha256", pin.sha256, "--size", str(pin.size),
            "--name", pin.name, "--url", pin.url, "--cache-dir", _DOWNLOAD_CACHE_DIR]
    try:
        result = await Get(
            ProcessResult,
            SmithProcess,
            SmithProcess.of(
                argv,
                description=f"Fetching and extracting {printable(pin.name)} {printable(pin.version)} "
                            f"({printable(pin.architecture)})",  # the repository's words
                input_digest=EMPTY_DIGEST,
                output_files=["tree.tar"],
                append_only_caches={DOWNLOAD_CACHE: _DOWNLOAD_CACHE_DIR},
            ),
        )
    except ProcessExecutionFailure as e:
        raise SmithPackagesError(for_terminal(  # the lockfile's values are the repository's words
            f"{located.owner}: cannot fetch {pin.name} {pin.version} pinned in {located.lockfile} from "
            f"{pin.url} (sha256 {pin.sha256}, {pin.size} bytes): {_smith_error(e)}. The pinned file "
            f"may be gone from the repository or changed: run `./pants smith-outdated {located.owner}` "
            f"to see what changed, then {regenerate_hint(located.resolve)}."
        )) from None
    return PackageTree(pin.name, result.output_digest, "tree.tar")


def _smith_error(e: Exception) -> str:
    """The `smith extract: error: ...` line of a failed Process (else the last line)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("smith extract: error:"):
            return line[len("smith extract: error:"):].strip()
    return lines[-1] if lines else type(e).__name__


async def merge(field_set: SmithPackagesFieldSet, trees: Tuple[PackageTree, ...],
                origin: SmithPackagesOrigin) -> SmithTree:
    if len(trees) == 1:
        return SmithTree(trees[0].digest, trees[0].path, (origin,))
    placed = await MultiGet(Get(Digest, AddPrefix(t.digest, f"in/{t.name}")) for t in trees)
    argv = ["merge-packages", "--output", "tree.tar", *(f"{t.name}=in/{t.name}/{t.path}" for t in trees)]
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Merging {len(trees)} package trees of {field_set.address}",
            input_digest=await Get(Digest, MergeDigests(placed)),
            output_files=["tree.tar"],
        ),
    )
    return SmithTree(result.output_digest, "tree.tar", (origin,))


@rule(desc="Building a smith_packages tree", level=LogLevel.DEBUG)
async def build_packages(field_set: SmithPackagesFieldSet) -> BuiltSmithPackages:
    return await Get(BuiltSmithPackages, PackagesForPlatform(field_set, platforms.DEFAULT))


@rule(desc="Building a smith_packages tree for a platform", level=LogLevel.DEBUG)
async def build_packages_for_platform(request: PackagesForPlatform) -> BuiltSmithPackages:
    field_set = request.field_set
    path = field_set.lockfile_path
    lock_digest = await Get(Digest, PathGlobs([path]))
    contents = await Get(DigestContents, Digest, lock_digest)
    if not contents:
        raise SmithPackagesError(
            f"{field_set.address}: the lockfile {path} does not exist; "
            f"{regenerate_hint(field_set.resolve_name)} to create it."
        )
    lock = parse_lock(field_set, contents[0].content)
    repo = await Get(ResolvedRepository, RepositoryRequest, field_set.repository_request())
    check_lock_matches(field_set, lock, repo.canonical())
    pins = pins_of(field_set, lock, request.platform)
    if not pins:
        for_platform = "" if request.platform == platforms.DEFAULT else f" for {request.platform}"
        raise SmithPackagesError(f"{field_set.address}: the lockfile {path} pins no packages{for_platform}.")
    trees = tuple(await MultiGet(Get(PackageTree, Pin, pin) for pin in pins))
    arch = platforms.get(request.platform).repo_arch(lock["repository"].get("kind"))
    if len(lockfile.architectures(lock)) == 1:
        arch = ""  # one architecture: the whole lock, and the SBOM step keeps its argv (and cache key)
    origin = SmithPackagesOrigin(field_set.address, field_set.resolve_name, lock_digest, path, trees, arch)
    return BuiltSmithPackages(await merge(field_set, trees, origin))


@rule(desc="Building a smith_packages tree", level=LogLevel.DEBUG)
async def packages_tree(field_set: SmithPackagesFieldSet) -> SmithTree:
    built = await Get(BuiltSmithPackages, SmithPackagesFieldSet, field_set)
    return built.tree


def rules():
    return [
        *collect_rules(),
        UnionRule(SmithTreeFieldSet, SmithPackagesFieldSet),
        UnionRule(SmithRootFieldSet, SmithPackagesFieldSet),
    ]
