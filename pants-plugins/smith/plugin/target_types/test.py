"""smith_image_test: a smoke test that runs one image in a container with smith's runtime."""
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    DictStringToStringField,
    IntField,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from smith.plugin.target_types.fields import OneOrMoreAddressesField


class SmithTestImageField(OneOrMoreAddressesField):
    alias = "image"
    required = True
    help = help_text(
        """
        The image to run: one `smith_image` (or any target `pants package` turns into an OCI
        image layout, such as `smith_minimize`). It is built the same way `package` builds it.
        """
    )


class SmithTestCommandField(StringSequenceField):
    alias = "command"
    default = ()
    help = help_text(
        """
        The whole command to run (absolute path inside the image first), replacing the image's
        Entrypoint and Cmd. Empty (the default): the image's Entrypoint + Cmd.
        """
    )


class SmithTestArgsField(StringSequenceField):
    alias = "args"
    default = ()
    help = help_text(
        """
        Arguments appended to `command`; without `command` they replace the image's Cmd (as
        `pants run ... -- ARGS` does), e.g. `["--version"]`.
        """
    )


class SmithTestEnvField(DictStringToStringField):
    alias = "env"
    help = "Extra environment of the container; overrides the image's variables of the same name."


class SmithTestReadFilesField(SpecialCasedDependencies):
    alias = "read_files"
    help = help_text(
        """
        `file`/`files`/`resource(s)` targets mounted read-only at /read. Each file lands at its
        path relative to `read_root`, e.g. `read/app.conf` -> `/read/app.conf`.
        """
    )


class SmithTestReadRootField(StringField):
    alias = "read_root"
    default = "read"
    help = help_text(
        """
        The directory, relative to this BUILD file, that stands for /read: smith's convention
        keeps a container's configuration in a `read/` directory next to its BUILD file. Every
        file of `read_files` must be under it.
        """
    )


class SmithTestExpectExitField(IntField):
    alias = "expect_exit"
    default = 0
    help = "The exit code the container must return."


class SmithTestExpectStdoutField(StringField):
    alias = "expect_stdout"
    help = "A Python regular expression the container's stdout must contain (re.search, MULTILINE)."


class SmithTestExpectStderrField(StringField):
    alias = "expect_stderr"
    help = "A Python regular expression the container's stderr must contain (re.search, MULTILINE)."


class SmithTestTimeoutField(IntField):
    alias = "timeout"
    default = 30
    help = "Seconds the container may run; then it is killed and the test fails."

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None and value <= 0:
            raise ValueError(f"{address}: `timeout` must be a positive number of seconds, not {value}.")
        return value


class SmithTestNetworkField(StringField):
    alias = "network"
    default = "none"
    valid_choices = ("none", "host")
    help = "`none`: the container has its own network namespace with only `lo`; `host`: the host's."


class SmithImageTestTarget(Target):
    alias = "smith_image_test"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithTestImageField,
        SmithTestCommandField,
        SmithTestArgsField,
        SmithTestEnvField,
        SmithTestReadFilesField,
        SmithTestReadRootField,
        SmithTestExpectExitField,
        SmithTestExpectStdoutField,
        SmithTestExpectStderrField,
        SmithTestTimeoutField,
        SmithTestNetworkField,
    )
    help = help_text(
        """
        A smoke test of a microcontainer image, run by `pants test`: the image runs once in a
        container (smith's runtime, read-only root, its own user namespace) and must exit with
        `expect_exit` and print what `expect_stdout` / `expect_stderr` match. Needs root.
        Results are cached like other tests; `pants test --force` runs them again.
        """
    )
