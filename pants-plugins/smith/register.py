"""Pants entry point of the smith backend: its target types and rules (one line per concern)."""
from pants.engine.unions import UnionRule

from smith import (
    binary_targets,
    minimize_targets,
    package_targets,
    registry_targets,
    test_targets,
    toolbox_targets,
)
from smith import target_types as smith_target_types
from smith.rules import (
    binary,
    command,
    image,
    layer,
    minimize,
    packages,
    packages_lock,
    packages_outdated,
    packages_sbom,
    publish,
    remote_image,
    run,
    smith_yaml,
    smoke_test,
    tool,
    toolbox,
)
from smith.rules.tree import SmithRootFieldSet


def target_types():
    return [
        *smith_target_types.all_target_types(),
        binary_targets.SmithBinaryTarget,
        *package_targets.all_target_types(),
        *registry_targets.target_types(),
        minimize_targets.SmithMinimizeTarget,
        smith_yaml.SmithYamlTarget,
        test_targets.SmithImageTestTarget,
        toolbox_targets.SmithToolboxTarget,
    ]


def rules():
    return [
        *tool.rules(),
        *layer.rules(),
        *image.rules(),
        *command.rules(),
        *binary.rules(),
        *packages.rules(),
        UnionRule(SmithRootFieldSet, packages.SmithPackagesFieldSet),
        *packages_lock.rules(),
        *packages_outdated.rules(),
        *packages_sbom.rules(),
        *registry_targets.image_plugin_fields(),
        *publish.rules(),
        *remote_image.rules(),
        *minimize.rules(),
        *smith_yaml.rules(),
        *smoke_test.rules(),
        *run.rules(),
        *toolbox.rules(),
    ]
