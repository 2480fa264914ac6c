"""smith_command: the plugin's own stdlib-only commands as fast-starting zipapps."""
from pants.engine.target import COMMON_TARGET_FIELDS, BoolField, StringField, StringSequenceField, Target
from pants.util.strutil import help_text

from smith.plugin.target_types.fields import SmithPackageOutputPathField

# ----------------------------------------------------------------------------------------------
# smith_command: the plugin's own stdlib-only commands as fast-starting zipapps
# ----------------------------------------------------------------------------------------------


class SmithCommandModuleField(StringField):
    alias = "module"
    required = True
    help = "The module of the `smith` package run as `__main__`, e.g. `smith.runtime`."


class SmithCommandPythonField(StringField):
    alias = "python"
    default = "/usr/bin/python3"
    help = help_text(
        """
        The interpreter of the `#!` line, started as `PYTHON -ISc...` (isolated, no site): the
        machine's own Python 3 (>= 3.9). An absolute path: `python3` on PATH may be a slow shim.
        """
    )


class SmithCommandOnlyField(StringSequenceField):
    alias = "only"
    default = ()
    help = help_text(
        """
        Files or directories of the `smith` package to pack (paths like `smith/runtime`). Empty:
        the `ZIPAPP_ONLY` list of the module's package (smith.runtime and smith.crashcart keep
        theirs next to their code), else all of it. Fewer modules, faster start.
        """
    )


class SmithCommandPrecompileField(BoolField):
    alias = "precompile"
    default = True
    help = help_text(
        """
        Pack `.pyc` files compiled by `python` (unchecked-hash, so deterministic) beside the
        sources: no compilation at start. Another Python version falls back to the sources.
        """
    )


class SmithCommandBundleField(StringSequenceField):
    alias = "bundle"
    default = ()
    help = help_text(
        """
        Pure-Python packages of the `[smith-tool]` requirements to pack into the zipapp too,
        e.g. `["elftools", "debian"]` for the full `smith` CLI.
        """
    )


class SmithCommandTarget(Target):
    alias = "smith_command"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithCommandModuleField,
        SmithCommandPythonField,
        SmithCommandBundleField,
        SmithCommandOnlyField,
        SmithCommandPrecompileField,
        SmithPackageOutputPathField,
    )
    help = help_text(
        """
        One of smith's own stdlib-only commands (the runtime, crashcart) packaged by `pants
        package` as a deterministic, executable zipapp of the `smith` package.
        """
    )

