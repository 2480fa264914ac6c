"""The smith core as a tool: a venv PEX holding the Pants-free `smith` package and its libraries.

Every expensive smith step runs as `python -m smith COMMAND ...` inside this PEX in a Process,
so Pants caches it locally and remotely by the digests of its inputs.
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Tuple

from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment, PythonExecutable
from pants.engine.environment import EnvironmentName
from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule, union
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

import smith
from smith.plugin.subsystems import SmithTool

# What the core PEX carries is the package minus the glue (smith/plugin/, the only code that
# imports pants) and minus what only tests use (smith/testutil/, tests, conftest.py).
_NOT_CORE_DIRS = {"plugin", "testutil"}


def is_core_file(rel: str) -> bool:
    """`rel`: a path inside the smith package, e.g. `oci/layer.py`."""
    name = rel.rsplit("/", 1)[-1]
    return (rel.split("/", 1)[0] not in _NOT_CORE_DIRS and name != "conftest.py"
            and not name.endswith("_test.py"))


def core_source_files() -> Tuple[Tuple[str, bytes], ...]:
    """(path, bytes) of every core module, read from this plugin's own installed sources."""
    pkg = Path(smith.__file__).parent
    return tuple(
        ("smith/" + path.relative_to(pkg).as_posix(), path.read_bytes())
        for path in sorted(pkg.rglob("*.py"))
        if is_core_file(path.relative_to(pkg).as_posix())
    )


@dataclass(frozen=True)
class SmithCore:
    """The requirements PEX, and the core sources beside it (so a core edit does not rebuild the PEX)."""

    pex: VenvPex
    sources: Digest


# Where the core sources sit beside the PEX in a sandbox (PEX_EXTRA_SYS_PATH points there).
SOURCES_DIR = "__smith_core"


def core_pex_request(tool: SmithTool) -> PexRequest:
    return PexRequest(
        output_filename="smith-core.pex",
        internal_only=True,
        requirements=tool.pex_requirements(),
        interpreter_constraints=tool.interpreter_constraints,
        main=tool.main,
    )


@rule(desc="Building the smith core PEX", level=LogLevel.DEBUG)
async def smith_core(tool: SmithTool) -> SmithCore:
    sources = await Get(
        Digest, CreateDigest(FileContent(p, c) for p, c in core_source_files())
    )
    venv_pex = await Get(VenvPex, PexRequest, core_pex_request(tool))
    return SmithCore(venv_pex, await Get(Digest, AddPrefix(sources, SOURCES_DIR)))


@dataclass(frozen=True)
class SmithProcess:
    """One `smith COMMAND ...` invocation in a sandbox."""

    argv: Tuple[str, ...]
    description: str
    input_digest: Digest
    output_files: Tuple[str, ...] = ()
    output_directories: Tuple[str, ...] = ()
    env: FrozenDict = FrozenDict()
    cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL
    timeout_seconds: Optional[int] = None
    append_only_caches: FrozenDict = FrozenDict()  # named cache -> path in the sandbox
    level: LogLevel = LogLevel.INFO

    @classmethod
    def of(
        cls,
        argv: Iterable[str],
        description: str,
        input_digest: Digest,
        output_files: Iterable[str] = (),
        output_directories: Iterable[str] = (),
        env: Optional[Mapping[str, str]] = None,
        cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL,
        timeout_seconds: Optional[int] = None,
        append_only_caches: Optional[Mapping[str, str]] = None,
        level: LogLevel = LogLevel.INFO,
    ) -> "SmithProcess":
        return cls(
            tuple(argv),
            description,
            input_digest,
            tuple(output_files),
            tuple(output_directories),
            FrozenDict(env or {}),
            cache_scope,
            timeout_seconds,
            FrozenDict(append_only_caches or {}),
            level,
        )


_CACHE_HEAD_START_MS = 3000

# Tools the core shells out to (gpgv, ...) live in the usual system directories.
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def core_env() -> dict:
    """The environment every Process running the core PEX gets (smith steps, pushes, tests)."""
    return {"PATH": TOOL_PATH, "LC_ALL": "C.UTF-8", "PEX_EXTRA_SYS_PATH": SOURCES_DIR}


# Pants' rule-graph solver gives every rule that Gets a SmithProcess its own copy of all that
# lies below (the core PEX: Pants' whole PEX machinery), one per distinct set of params in scope
# at the caller. A union Get passes on only its member and EnvironmentName, so what lies below
# `smith_core_process` is solved once: ~70k fewer solver steps (~0.7 s CPU) at every Pants start
# without pantsd (bench/README.md, issue 16).
@union(in_scope_types=[EnvironmentName])
class CoreProcessRequest:
    pass


@dataclass(frozen=True)
class CoreProcess:
    request: SmithProcess


@rule(level=LogLevel.DEBUG)
async def smith_process(request: SmithProcess) -> Process:
    """The one way the glue runs the core: `python -m smith ARGV` in a sandbox with the core PEX.
    `Get(ProcessResult, SmithProcess, ...)` goes through here and Pants' own Process rules (a
    failure raises with the command's stderr, the user's error)."""
    return await Get(Process, CoreProcessRequest, CoreProcess(request))


@rule(level=LogLevel.DEBUG)
async def smith_core_process(boxed: CoreProcess, core: SmithCore) -> Process:
    request = boxed.request
    process = VenvPexProcess(
        core.pex,
        argv=request.argv,
        description=request.description,
        input_digest=await Get(Digest, MergeDigests([request.input_digest, core.sources])),
        output_files=request.output_files,
        output_directories=request.output_directories,
        extra_env={**core_env(), "SOURCE_DATE_EPOCH": "0", **request.env},
        cache_scope=request.cache_scope,
        timeout_seconds=request.timeout_seconds,
        append_only_caches=request.append_only_caches,
        level=request.level,
    )
    built = await Get(Process, VenvPexProcess, process)
    # Pants races a local run against the remote cache lookup from the first millisecond; on a
    # busy machine the local run of a quick step can win, and a warm cache is then not used.
    # Give the cache a head start (only matters when remote_cache_read is on).
    return dataclasses.replace(built, remote_cache_speculation_delay_millis=_CACHE_HEAD_START_MS)


@dataclass(frozen=True)
class SmithWorkspaceCommand:
    """The core run outside a sandbox (`pants run`): `argv` starts `python -m smith`; paths in it
    and in `env` carry Pants' `{chroot}` placeholder, as RunRequest wants."""

    digest: Digest
    argv: Tuple[str, ...]
    env: FrozenDict
    append_only_caches: FrozenDict


@dataclass(frozen=True)
class SmithWorkspaceCommandRequest:
    pass


def in_chroot(relpath: str) -> str:
    return "{chroot}/" + relpath


@rule(desc="Preparing the smith core to run in the workspace", level=LogLevel.DEBUG)
async def smith_workspace_command(
    _: SmithWorkspaceCommandRequest, tool: SmithTool, pex_env: PexEnvironment
) -> SmithWorkspaceCommand:
    # As `pants run` of a python_source does (pants.backend.python.goals.run_helper).
    pex_environment = pex_env.in_workspace()
    venv_pex, python, sources = await MultiGet(
        Get(VenvPex, VenvPexRequest(core_pex_request(tool), pex_environment)),
        Get(PythonExecutable, InterpreterConstraints, tool.interpreter_constraints),
        Get(Digest, CreateDigest(FileContent(f"{SOURCES_DIR}/{p}", c) for p, c in core_source_files())),
    )
    return SmithWorkspaceCommand(
        await Get(Digest, MergeDigests([venv_pex.digest, sources])),
        (in_chroot(venv_pex.pex.argv0),),
        FrozenDict({**pex_environment.environment_dict(python=python), **core_env(),
                    "PEX_EXTRA_SYS_PATH": in_chroot(SOURCES_DIR)}),
        FrozenDict({**pex_environment.append_only_caches, **(venv_pex.append_only_caches or {})}),
    )


def rules():
    return [*collect_rules(), *pex.rules(), UnionRule(CoreProcessRequest, CoreProcess)]
