"""Pants entry point of the smith backend (`backend_packages = ["smith.plugin"]`).

Target types: smith/plugin/target_types/ (one module per concern). Rules: rules/util/ builds
things (trees, layers, images, the core Process), rules/goals/ plugs them into Pants' goals.
Everything outside smith/plugin/ is the Pants-free core.
"""


def target_types():
    from smith.plugin.target_types import all_target_types, service

    return [*all_target_types(), *service.target_types()]


def rules():
    from smith.plugin.target_types import bytecode as bytecode_fields
    from smith.plugin.rules.goals import lockfiles, outdated, package, publish, run, service, tailor, test
    from smith.plugin.rules.util import (
        binary,
        bytecode,
        command,
        dependencies,
        image,
        launch,
        layer,
        minimize,
        packages,
        platform,
        process,
        remote_image,
        sbom,
        smith_yaml,
        toolbox,
    )

    return [
        # util: one module per thing built; each registers its own union members
        *process.rules(),
        *packages.rules(),
        *binary.rules(),
        *bytecode.rules(),
        *platform.rules(),
        *minimize.rules(),
        *layer.rules(),
        *image.rules(),
        *sbom.rules(),
        *remote_image.rules(),
        *toolbox.rules(),
        *command.rules(),
        *launch.rules(),
        *smith_yaml.rules(),
        *bytecode_fields.plugin_fields(),  # smith_layer(python_bytecode=...)
        *dependencies.rules(),
        # goals
        *package.rules(),
        *test.rules(),
        *run.rules(),
        *publish.rules(),
        *lockfiles.rules(),
        *outdated.rules(),
        *service.rules(),
        *tailor.rules(),
    ]
