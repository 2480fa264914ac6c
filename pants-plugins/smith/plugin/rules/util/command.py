"""smith_command -> an executable zipapp of the smith package (dist/smith-runtime, dist/crashcart)."""
import importlib
from dataclasses import dataclass
from typing import Tuple

from pants.core.goals.package import OutputPathField
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import FieldSet
from pants.util.logging import LogLevel

from smith.plugin.rules.util.process import SmithProcess, core_source_files
from smith.plugin.target_types.command import (
    SmithCommandBundleField,
    SmithCommandModuleField,
    SmithCommandOnlyField,
    SmithCommandPrecompileField,
    SmithCommandPythonField,
)


@dataclass(frozen=True)
class SmithCommandFieldSet(FieldSet):
    """`pants package` reaches it through rules/goals/package.py's one PackageFieldSet member."""

    required_fields = (SmithCommandModuleField,)

    module: SmithCommandModuleField
    python: SmithCommandPythonField
    bundle: SmithCommandBundleField
    only: SmithCommandOnlyField
    precompile: SmithCommandPrecompileField
    output_path: OutputPathField


@dataclass(frozen=True)
class BuiltZipapp:
    digest: Digest
    path: str


class SmithCommandError(ValueError):
    pass


def zipapp_only(field_set: SmithCommandFieldSet) -> Tuple[str, ...]:
    """`only`, or else what the module's own package says its zipapp holds (its ZIPAPP_ONLY, as
    smith.runtime and smith.crashcart declare): the list lives next to the code it names."""
    if field_set.only.value:
        return tuple(field_set.only.value)
    module = field_set.module.value
    if module != "smith" and not module.startswith("smith."):
        raise SmithCommandError(
            f"{field_set.address}: `module` must be `smith` or a module of the smith package, not {module!r}."
        )
    try:
        package = importlib.import_module(module)
    except ImportError as e:
        raise SmithCommandError(f"{field_set.address}: `module` {module!r} cannot be imported ({e}).") from None
    return tuple(getattr(package, "ZIPAPP_ONLY", ()))


@rule(desc="Packaging a smith command", level=LogLevel.DEBUG)
async def package_command(field_set: SmithCommandFieldSet) -> BuiltZipapp:
    out = field_set.output_path.value_or_default(file_ending=None)
    only = zipapp_only(field_set)
    sources = await Get(
        Digest, CreateDigest(FileContent("src/" + p, c) for p, c in core_source_files())
    )
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            ["zipapp", "--output", out, "--main", field_set.module.value,
             "--python", field_set.python.value,
             *(f"--bundle={b}" for b in field_set.bundle.value or ()),
             *(f"--only={o}" for o in only),
             *([f"--precompile={field_set.python.value}"] if field_set.precompile.value else []),
             "src"],
            description=f"Packaging {field_set.address} ({field_set.module.value})",
            input_digest=sources,
            output_files=[out],
        ),
    )
    return BuiltZipapp(result.output_digest, out)


def rules():
    return collect_rules()
