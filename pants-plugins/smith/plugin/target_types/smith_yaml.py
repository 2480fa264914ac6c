"""smith_yaml: a target generator reading Oracle smith's `smith.yaml` (see smith/plugin/smith_yaml_spec.py)."""
from pants.engine.target import COMMON_TARGET_FIELDS, SingleSourceField, StringField, TargetGenerator
from pants.util.strutil import help_text

from smith.plugin.target_types.fields import SingleAddressField
from smith.plugin.target_types.image import SmithImageTarget

DEFAULT_REPOSITORY = ":bookworm"


class SmithYamlSourceField(SingleSourceField):
    default = "smith.yaml"
    required = False
    expected_file_extensions = (".yaml", ".yml")
    help = "The smith.yaml file, relative to this BUILD file."


class SmithYamlRepositoryField(SingleAddressField):
    alias = "repository"
    help = help_text(
        """
        Address of the `smith_repository` that package builds install `package` from (smith.yaml
        names none: smith used the machine's yum repositories). Default: `:bookworm`. A
        dependency of the generated smith_packages target (and of this one when set).
        """
    )

    def for_packages(self) -> str:
        return self.address_spec or DEFAULT_REPOSITORY


class SmithYamlResolveField(StringField):
    alias = "resolve"
    help = "Lock name of a package build (`./pants generate-lockfiles --resolve=NAME`). Default: the target's name."


class SmithYamlLockfileField(StringField):
    alias = "lockfile"
    help = "Lockfile of a package build, relative to this BUILD file. Default: `RESOLVE.lock.json`."


class SmithYamlTarget(TargetGenerator):
    alias = "smith_yaml"
    generated_target_cls = SmithImageTarget
    core_fields = (*COMMON_TARGET_FIELDS, SmithYamlSourceField, SmithYamlRepositoryField,
                   SmithYamlResolveField, SmithYamlLockfileField)
    copied_fields = COMMON_TARGET_FIELDS
    moved_fields = ()
    help = help_text(
        """
        Build the image an Oracle smith `smith.yaml` describes. `type: oci` generates
        `NAME#image`, a smith_minimize of `package` (an image path relative to this BUILD file or
        a target address); a package build generates `NAME#packages` (smith_packages from
        `repository`), `NAME#binary`, `NAME#layer` and `NAME#image` (smith_image). Not supported
        yet (an error naming the field): `parent`, `groups`, `mounts`.
        """
    )
