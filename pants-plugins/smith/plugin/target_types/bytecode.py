"""`smith_layer(python_bytecode=...)`: Python bytecode compiled into the layer at build time.

Plugin fields of smith_layer (registered in register.py), kept apart from image.py because
they are one concern: the `.pyc` step (core: smith/bytecode/).
"""
from pants.engine.target import StringField
from pants.util.strutil import help_text

from smith.plugin.target_types.fields import SingleAddressField


class SmithPythonBytecodeField(SingleAddressField):
    alias = "python_bytecode"
    help = help_text(
        """
        A tree target holding the image's Python interpreter (a `smith_packages` with e.g.
        `python3.11-minimal`, or a `smith_binary`). When set, every `.py` file the layer holds
        (after `excludes`) gets an unchecked-hash `.pyc` in its `__pycache__/`, compiled at build
        time by that interpreter (run on the build machine through the tree's own ld.so, so the
        bytecode is the image's), with `co_filename` the path inside the image. Nothing then
        compiles when the container starts, on a read-only root where nothing could be cached.
        The `.pyc` are deterministic (no mtime; one fresh interpreter per layer with a fixed
        hash seed). Layers holding the interpreter's standard library and layers holding an
        app or its dependencies can name the same tree.
        """
    )


class SmithPythonInterpreterField(StringField):
    alias = "python_interpreter"
    help = help_text(
        """
        Path of the interpreter inside the `python_bytecode` tree. Default: `/usr/bin/python3`,
        else the only `/usr/bin/python3.N` of the tree.
        """
    )


def plugin_fields():
    from smith.plugin.target_types.image import SmithLayerTarget

    return [
        SmithLayerTarget.register_plugin_field(SmithPythonBytecodeField),
        SmithLayerTarget.register_plugin_field(SmithPythonInterpreterField),
    ]
