"""SPDX 2.3 SBOMs for images built from smith_packages (`smith sbom`).

rules/image.py asks for `ImageSboms` with its layer targets and built layers; for every
smith_packages target that feeds a layer (directly, or as the `root` of a smith_binary in it)
one SBOM is written: each locked package, and each file of the image with its package of origin.
image.py attaches them to the layout (`smith image --attach application/spdx+json=FILE`).
"""
from dataclasses import dataclass
from typing import Dict, Tuple

from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, Digest, MergeDigests
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import DependenciesRequest, Target, Targets, UnparsedAddressInputs
from pants.util.logging import LogLevel

from smith.binary_targets import SmithBinaryRootField
from smith.package_targets import SmithPackagesTarget
from smith.rules.packages import BuiltSmithPackages, SmithPackagesFieldSet
from smith.rules.tool import SmithProcess
from smith.target_types import SmithLayerDependenciesField

SPDX_MEDIA_TYPE = "application/spdx+json"


@dataclass(frozen=True)
class ImageSbomRequest:
    image: Address
    layer_targets: Tuple[Target, ...]
    layer_digests: Tuple[Digest, ...]  # each holds layer.tar.gz at its root


@dataclass(frozen=True)
class ImageSboms:
    digest: Digest  # the SBOM files at its root
    files: Tuple[str, ...]

    def attach_args(self) -> Tuple[str, ...]:
        return tuple(a for f in self.files for a in ("--attach", f"{SPDX_MEDIA_TYPE}={f}"))


async def packages_of_layer(layer: Target) -> Tuple[Target, ...]:
    deps = await Get(Targets, DependenciesRequest(layer[SmithLayerDependenciesField]))
    found = [t for t in deps if isinstance(t, SmithPackagesTarget)]
    roots = await MultiGet(
        Get(Targets, UnparsedAddressInputs, t[SmithBinaryRootField].to_unparsed_address_inputs())
        for t in deps if t.has_field(SmithBinaryRootField)
    )
    found += [r for rs in roots for r in rs if isinstance(r, SmithPackagesTarget)]
    return tuple(found)


@rule(desc="Writing the SBOMs of a smith image", level=LogLevel.DEBUG)
async def image_sboms(request: ImageSbomRequest) -> ImageSboms:
    packages: Dict[Address, Target] = {}
    for layer in request.layer_targets:
        for t in await packages_of_layer(layer):
            packages.setdefault(t.address, t)
    if not packages:
        return ImageSboms(EMPTY_DIGEST, ())
    field_sets = [SmithPackagesFieldSet.create(packages[a]) for a in sorted(packages)]
    built = await MultiGet(Get(BuiltSmithPackages, SmithPackagesFieldSet, fs) for fs in field_sets)

    placed = await MultiGet(
        Get(Digest, AddPrefix(d, f"layers/{i}")) for i, d in enumerate(request.layer_digests)
    )
    layers = await Get(Digest, MergeDigests(placed))
    layer_args = [f"--layer=layers/{i}/layer.tar.gz" for i in range(len(request.layer_digests))]
    outputs, files = [], []
    for fs, b in zip(field_sets, built):
        inputs = [layers, await Get(Digest, AddPrefix(b.lock_digest, "lock"))]
        argv = ["sbom", "--output", f"sbom-{fs.resolve_name}.spdx.json", "--lock", f"lock/{b.lock_path}",
                *layer_args, "--name", str(request.image)]
        for p in b.packages:
            inputs.append(await Get(Digest, AddPrefix(p.digest, f"pkg/{p.name}")))
            argv += ["--package", f"{p.name}=pkg/{p.name}/{p.path}"]
        result = await Get(
            ProcessResult,
            SmithProcess,
            SmithProcess.of(
                argv,
                description=f"Writing the SBOM of {request.image} for {fs.address}",
                input_digest=await Get(Digest, MergeDigests(inputs)),
                output_files=[f"sbom-{fs.resolve_name}.spdx.json"],
            ),
        )
        outputs.append(result.output_digest)
        files.append(f"sbom-{fs.resolve_name}.spdx.json")
    return ImageSboms(await Get(Digest, MergeDigests(outputs)), tuple(files))


def rules():
    return collect_rules()
