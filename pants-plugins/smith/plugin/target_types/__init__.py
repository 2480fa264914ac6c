"""The smith target types, one module per concern."""


def all_target_types():
    from smith.plugin.target_types import (
        binary,
        command,
        image,
        minimize,
        packages,
        remote_image,
        smith_yaml,
        test,
        toolbox,
    )

    return [
        *image.all_target_types(),
        *packages.all_target_types(),
        binary.SmithBinaryTarget,
        minimize.SmithMinimizeTarget,
        remote_image.SmithRemoteImageTarget,
        smith_yaml.SmithYamlTarget,
        test.SmithImageTestTarget,
        toolbox.SmithToolboxTarget,
        command.SmithCommandTarget,
    ]
