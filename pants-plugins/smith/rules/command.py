"""smith_command -> an executable zipapp of the smith package (dist/smith-runtime, dist/crashcart)."""
from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField, PackageFieldSet
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from smith.rules.tool import SmithProcess, core_source_files
from smith.target_types import (
    SmithCommandBundleField,
    SmithCommandModuleField,
    SmithCommandOnlyField,
    SmithCommandPrecompileField,
    SmithCommandPythonField,
)


@dataclass(frozen=True)
class SmithCommandFieldSet(PackageFieldSet):
    required_fields = (SmithCommandModuleField,)

    module: SmithCommandModuleField
    python: SmithCommandPythonField
    bundle: SmithCommandBundleField
    only: SmithCommandOnlyField
    precompile: SmithCommandPrecompileField
    output_path: OutputPathField


@rule(desc="Packaging a smith command", level=LogLevel.DEBUG)
async def package_command(field_set: SmithCommandFieldSet) -> BuiltPackage:
    out = field_set.output_path.value_or_default(file_ending=None)
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
             *(f"--only={o}" for o in field_set.only.value or ()),
             *([f"--precompile={field_set.python.value}"] if field_set.precompile.value else []),
             "src"],
            description=f"Packaging {field_set.address} ({field_set.module.value})",
            input_digest=sources,
            output_files=[out],
        ),
    )
    return BuiltPackage(result.output_digest, (BuiltPackageArtifact(out),))


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, SmithCommandFieldSet)]
