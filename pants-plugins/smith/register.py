"""Pants entry point of the smith backend: its target types and rules."""
from smith import target_types as smith_target_types
from smith.rules import command, image, layer, tool


def target_types():
    return smith_target_types.all_target_types()


def rules():
    return [*tool.rules(), *layer.rules(), *image.rules(), *command.rules()]
