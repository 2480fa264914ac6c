"""smith_layer(python_bytecode=...) -> a tree tar of .pyc for the layer, by `smith pyc`.

The layer rule hands over its own sources (input digest and the `--dir/--tar/--exclude` it
gives `smith layer`), so the .pyc sit beside exactly the .py files the layer holds; the result
goes into the same layer as one more `--tar`. One Process per layer: its cache key is the
layer's sources and the interpreter's tree, so an unchanged layer is never compiled again.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from pants.engine.addresses import Address, UnparsedAddressInputs
from pants.engine.fs import AddPrefix, Digest, MergeDigests
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import FieldSetsPerTarget, FieldSetsPerTargetRequest, Targets
from pants.util.logging import LogLevel

from smith.plugin.rules.util.process import SmithProcess
from smith.plugin.rules.util.tree import SmithTree, SmithTreeFieldSet, TreeForPlatform
from smith.plugin.target_types.bytecode import SmithPythonBytecodeField, SmithPythonInterpreterField

PYC_TAR = "pyc.tar"  # where the result lies in LayerBytecode.digest


@dataclass(frozen=True)
class LayerBytecodeRequest:
    address: Address
    python_bytecode: SmithPythonBytecodeField
    python_interpreter: SmithPythonInterpreterField
    platform: str
    sources: Digest  # the layer's input digest
    source_args: Tuple[str, ...]  # the layer's --dir/--tar/--exclude, paths in `sources`


    @classmethod
    def of(cls, field_set, platform: str, sources: Digest, layer_argv) -> "LayerBytecodeRequest":
        """The request for a smith_layer field set whose `smith layer` argv reads `sources`."""
        picked = []
        for i, arg in enumerate(layer_argv[:-1]):
            if arg in _SOURCE_OPTIONS:
                picked += [arg, layer_argv[i + 1]]
        return cls(field_set.address, field_set.python_bytecode, field_set.python_interpreter,
                   platform, sources, tuple(picked))


_SOURCE_OPTIONS = ("--dir", "--tar", "--exclude")  # of `smith layer`, taken alike by `smith pyc`


@dataclass(frozen=True)
class LayerBytecode:
    digest: Digest  # holds PYC_TAR
    path: Optional[str]  # PYC_TAR, or None when the layer asks for no bytecode


class BytecodeError(Exception):
    pass


@rule(desc="Compiling Python bytecode for a smith layer", level=LogLevel.DEBUG)
async def layer_bytecode(request: LayerBytecodeRequest) -> LayerBytecode:
    field = request.python_bytecode
    if not field.value:
        return LayerBytecode(await Get(Digest, MergeDigests([])), None)
    targets = await Get(Targets, UnparsedAddressInputs, field.to_unparsed_address_inputs())
    tree_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(SmithTreeFieldSet, targets))
    if len(tree_sets.field_sets) != 1:
        t = targets[0]
        raise BytecodeError(
            f"{request.address}: `python_bytecode` target {t.address} is a `{t.alias}`, which yields "
            "no file tree; name the smith_packages (or smith_binary) that holds the image's Python."
        )
    tree = await Get(SmithTree, TreeForPlatform(tree_sets.field_sets[0], request.platform))
    python_tree = await Get(Digest, AddPrefix(tree.digest, "python"))
    argv = ["pyc", "--python-tree", f"python/{tree.path}", "--output", PYC_TAR, *request.source_args]
    if request.python_interpreter.value:
        argv += ["--python", request.python_interpreter.value]
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Compiling Python bytecode for {request.address}",
            input_digest=await Get(Digest, MergeDigests([request.sources, python_tree])),
            output_files=[PYC_TAR],
        ),
    )
    return LayerBytecode(result.output_digest, PYC_TAR)


def rules():
    return collect_rules()
