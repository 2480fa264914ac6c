"""Trees per image platform: TreeForPlatform -> the builder of its field set's kind.

smith_packages and smith_binary build for any platform (their Processes take the platform's
pins / `--platform`, so each platform is cached apart, and linux/amd64 keeps the keys it
always had). Other tree targets (smith_minimize) yield the tree of the image they come from,
for linux/amd64 only.
"""
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from smith import platforms as platforms
from smith.plugin.rules.util.binary import BinaryForPlatform, SmithBinaryFieldSet
from smith.plugin.rules.util.packages import BuiltSmithPackages, PackagesForPlatform, SmithPackagesFieldSet
from smith.plugin.rules.util.tree import SmithTree, SmithTreeFieldSet, TreeForPlatform


class SmithPlatformError(ValueError):
    pass


@rule(desc="Building a tree for a platform", level=LogLevel.DEBUG)
async def tree_for_platform(request: TreeForPlatform) -> SmithTree:
    field_set, platform = request.field_set, request.platform
    if isinstance(field_set, SmithPackagesFieldSet):
        built = await Get(BuiltSmithPackages, PackagesForPlatform(field_set, platform))
        return built.tree
    if isinstance(field_set, SmithBinaryFieldSet):
        return await Get(SmithTree, BinaryForPlatform(field_set, platform))
    if platform != platforms.DEFAULT:
        raise SmithPlatformError(
            f"{field_set.address} yields a tree for {platforms.DEFAULT} only, but a build for "
            f"{platform} asks for it; use smith_packages / smith_binary targets (built per platform), "
            f"or put it in a smith_layer with platforms=[\"{platforms.DEFAULT}\"]."
        )
    return await Get(SmithTree, SmithTreeFieldSet, field_set)


def rules():
    return collect_rules()
