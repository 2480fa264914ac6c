"""SPDX 2.3 SBOMs for images built from smith_packages (`smith sbom`).

rules/util/image.py asks for `ImageSboms` with the package origins its layers carry (see
SmithPackagesOrigin in tree.py) and the built layers; for every smith_packages target among them
one SBOM is written: each locked package, and each file of the image with its package of origin.
image.py attaches them to the layout (`smith image --attach application/spdx+json=FILE`).
"""
from dataclasses import dataclass
from typing import Tuple

from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, Digest, MergeDigests
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.rules.util.tree import SmithPackagesOrigin

SPDX_MEDIA_TYPE = "application/spdx+json"


@dataclass(frozen=True)
class ImageSbomRequest:
    image: Address
    origins: Tuple[SmithPackagesOrigin, ...]
    layer_digests: Tuple[Digest, ...]  # each holds layer.tar.gz at its root


@dataclass(frozen=True)
class ImageSboms:
    digest: Digest  # the SBOM files at its root
    files: Tuple[str, ...]

    def attach_args(self) -> Tuple[str, ...]:
        return tuple(a for f in self.files for a in ("--attach", f"{SPDX_MEDIA_TYPE}={f}"))


@rule(desc="Writing the SBOMs of a smith image", level=LogLevel.DEBUG)
async def image_sboms(request: ImageSbomRequest) -> ImageSboms:
    if not request.origins:
        return ImageSboms(EMPTY_DIGEST, ())
    placed = await MultiGet(
        Get(Digest, AddPrefix(d, f"layers/{i}")) for i, d in enumerate(request.layer_digests)
    )
    layers = await Get(Digest, MergeDigests(placed))
    layer_args = [f"--layer=layers/{i}/layer.tar.gz" for i in range(len(request.layer_digests))]
    outputs, files = [], []
    for origin in request.origins:
        output = f"sbom-{origin.resolve}.spdx.json"
        inputs = [layers, await Get(Digest, AddPrefix(origin.lock_digest, "lock"))]
        argv = ["sbom", "--output", output, "--lock", f"lock/{origin.lock_path}",
                *layer_args, "--name", str(request.image)]
        if origin.architecture:  # a lock of several architectures: this image's pins only
            argv += ["--architecture", origin.architecture]
        for p in origin.packages:
            inputs.append(await Get(Digest, AddPrefix(p.digest, f"pkg/{p.name}")))
            argv += ["--package", f"{p.name}=pkg/{p.name}/{p.path}"]
        result = await Get(
            ProcessResult,
            SmithProcess,
            SmithProcess.of(
                argv,
                description=f"Writing the SBOM of {request.image} for {origin.address}",
                input_digest=await Get(Digest, MergeDigests(inputs)),
                output_files=[output],
            ),
        )
        outputs.append(result.output_digest)
        files.append(output)
    return ImageSboms(await Get(Digest, MergeDigests(outputs)), tuple(files))


def rules():
    return collect_rules()
