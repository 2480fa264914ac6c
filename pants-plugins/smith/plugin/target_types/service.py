"""smith_service_test (a server in a container, checked over its own network namespace) and
smith_structure_test (an image's files and config, checked without running it).

The checks are lists of dicts in BUILD files; each is validated here with the core's own
validator (smith.launch.service_spec / smith.launch.structure), so a BUILD error names the
target, the field and the check, e.g. "The `tcp_checks` field of examples/redis:redis-service:
tcp_checks[0].expect: '(' is not a valid Python regular expression".
"""
import json
from typing import Any, Iterable, Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    DictStringToStringField,
    Field,
    IntField,
    InvalidFieldException,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from smith.launch import service_spec, structure
from smith.plugin.target_types.fields import OneOrMoreAddressesField, SingleAddressField
from smith.plugin.target_types.test import (
    SmithTestArgsField,
    SmithTestCommandField,
    SmithTestEnvField,
    SmithTestReadFilesField,
    SmithTestReadRootField,
)


def _error(cls, address: Address, message: str) -> InvalidFieldException:
    return InvalidFieldException(f"The `{cls.alias}` field of {address}: {message}")


class JsonValueField(Field):
    """A BUILD value of lists/dicts/strings/numbers, kept as canonical JSON text (hashable)."""

    expected = "a list of dicts"
    default = None

    @classmethod
    def check(cls, value: Any, address: Address) -> None:
        """Raise InvalidFieldException when `value` is not what the field takes."""

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        if isinstance(value, tuple):
            value = list(value)
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            raise _error(cls, address, f"must be {cls.expected} of strings, numbers and booleans, not {value!r}.")
        cls.check(json.loads(text), address)
        return text

    def json(self) -> Any:
        return json.loads(self.value) if self.value is not None else None


def _check_list(cls, value: Any, address: Address, one) -> None:
    if not isinstance(value, list):
        raise _error(cls, address, f"must be a list of dicts, not {value!r}.")
    for i, item in enumerate(value):
        try:
            one(item, f"{cls.alias}[{i}]")
        except service_spec.SpecError as e:
            raise _error(cls, address, f"{e}.")


# -- smith_service_test ---------------------------------------------------------------------------
class ServiceImageField(OneOrMoreAddressesField):
    # Not a subclass of smith_image_test's `image`: a target with a subclass of a field set's
    # required field would get that field set (smith_image_test's rule) too.
    alias = "image"
    required = True
    help = help_text(
        """
        The server image to test: one `smith_image` (or `smith_minimize`, or any target `pants
        package` turns into an OCI image layout). It is started detached, like `pants run`
        would, with a read-only root, /write, /run and /read, in its own user and network
        namespaces.
        """
    )


class ReadyPortField(IntField):
    alias = "ready_port"
    help = help_text(
        """
        The TCP port (on 127.0.0.1 inside the container's own network namespace) that accepts
        connections once the service is ready; the checks' default `port`. No host port is
        used, so tests run in parallel.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None and not 1 <= value <= 65535:
            raise _error(cls, address, f"{value} is not a TCP port (1-65535).")
        return value


class ReadyLogField(StringField):
    alias = "ready_log"
    help = help_text(
        """
        A Python regex the service's stdout or stderr must match before it counts as ready
        (together with `ready_port` when both are set), e.g. `"Ready to accept connections"`.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            try:
                service_spec.regex(value, cls.alias)
            except service_spec.SpecError as e:
                raise _error(cls, address, f"{e.message}.")
        return value


class _Seconds(IntField):
    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None and not 0 < value <= 86400:
            raise _error(cls, address, f"must be a positive number of seconds (at most 86400), not {value}.")
        return value


class ReadyTimeoutField(_Seconds):
    alias = "ready_timeout"
    default = 30
    help = "Seconds the service may take to become ready; then the test fails, showing its output."


class TcpChecksField(JsonValueField):
    alias = "tcp_checks"
    help = help_text(
        """
        Checks over TCP, run in order once the service is ready: each a dict with `send` (text
        sent as UTF-8, e.g. `"PING\\r\\n"`; may be empty to read a banner), `expect` (a Python
        regex the reply must contain), and optionally `port` (default `ready_port`) and
        `timeout` (seconds, default 5). The reply is read until it matches, the server closes,
        nothing more comes for 1 s, or the timeout.
        """
    )

    @classmethod
    def check(cls, value: Any, address: Address) -> None:
        _check_list(cls, value, address, lambda d, w: service_spec.tcp_check(d, w, 1))


class HttpChecksField(JsonValueField):
    alias = "http_checks"
    help = help_text(
        """
        HTTP/1.1 checks, run after `tcp_checks`: each a dict with `method` (default GET),
        `path` (default `/`), `status` (default 200), and optionally `body` (a Python regex the
        body must contain), `headers` (name -> regex the response header must match),
        `request_headers` (name -> value), `data` (request body), `port` (default
        `ready_port`), `timeout` (default 5). Requests carry `Host: 127.0.0.1:PORT` and
        `Connection: close`.
        """
    )

    @classmethod
    def check(cls, value: Any, address: Address) -> None:
        _check_list(cls, value, address, lambda d, w: service_spec.http_check(d, w, 1))


class ClientImageField(SingleAddressField):
    alias = "client"
    help = help_text(
        """
        A client image (e.g. a `redis-cli` microcontainer) run after `http_checks` as a sidecar:
        in its own container that joins the service's network namespace, so `127.0.0.1:PORT`
        reaches the service. What it runs and expects: `client_command`, `client_args`,
        `client_env`, `client_expect_exit`, `client_expect_stdout`, `client_expect_stderr`.
        `after_restart` checks of type `client` run this image too.
        """
    )


class ClientCommandField(StringSequenceField):
    alias = "client_command"
    default = ()
    help = "The client's whole command (absolute path first), replacing its Entrypoint and Cmd."


class ClientArgsField(StringSequenceField):
    alias = "client_args"
    default = ()
    help = help_text(
        """
        Appended to `client_command`; without it they replace the client image's Cmd, e.g.
        `["SET", "greeting", "hello"]` for an image whose Entrypoint is redis-cli.
        """
    )


class ClientEnvField(DictStringToStringField):
    alias = "client_env"
    help = "Extra environment of the client container."


class ClientExpectExitField(IntField):
    alias = "client_expect_exit"
    default = 0
    help = "The exit code the client must return."


class ClientExpectStdoutField(StringField):
    alias = "client_expect_stdout"
    help = "A Python regex the client's stdout must contain (re.search, MULTILINE)."


class ClientExpectStderrField(StringField):
    alias = "client_expect_stderr"
    help = "A Python regex the client's stderr must contain (re.search, MULTILINE)."


class StopSignalField(StringField):
    alias = "stop_signal"
    default = "TERM"
    help = help_text(
        """
        The signal that stops the service (sent with the runtime's `kill`): a name such as
        `TERM`, `INT` or `QUIT`, or a number. The service is its container's PID 1, which
        ignores signals it has no handler for.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        try:
            return service_spec.signal_name(value, cls.alias)
        except service_spec.SpecError as e:
            raise _error(cls, address, f"{e.message}.")


class ExpectStopExitField(IntField):
    alias = "expect_stop_exit"
    default = 0
    help = "The exit code the service must return after `stop_signal` (128+N when a signal N ends it)."


class StopTimeoutField(_Seconds):
    alias = "stop_timeout"
    default = 10
    help = "Seconds the service may take to exit after `stop_signal`; then it is killed and the test fails."


class RestartField(BoolField):
    alias = "restart"
    default = False
    help = help_text(
        """
        After the stop, start the image again in a new container on the same /write directory
        (and the same host id range), wait until it is ready and run `after_restart`: data the
        first run wrote must still be there.
        """
    )


class AfterRestartField(JsonValueField):
    alias = "after_restart"
    help = help_text(
        """
        Checks run after the restart: dicts like those of `tcp_checks` or `http_checks` with
        `"type": "tcp"` or `"type": "http"`, or `"type": "client"` with `command`, `args`,
        `env`, `expect_exit`, `expect_stdout`, `expect_stderr`, `timeout` (run with the
        `client` image).
        """
    )

    @classmethod
    def check(cls, value: Any, address: Address) -> None:
        _check_list(cls, value, address, lambda d, w: service_spec.typed_check(d, w, 1, "client"))


class ServiceTimeoutField(_Seconds):
    alias = "timeout"
    default = 120
    help = help_text(
        """
        Seconds the whole test may take (start, readiness, checks, stop and the restart); then
        everything is killed and the test fails. Unpacking new layers into the store comes on top.
        """
    )


SERVICE_FIELDS = (
    ServiceImageField, SmithTestCommandField, SmithTestArgsField, SmithTestEnvField, SmithTestReadFilesField,
    SmithTestReadRootField, ReadyPortField, ReadyLogField, ReadyTimeoutField, TcpChecksField,
    HttpChecksField, ClientImageField, ClientCommandField, ClientArgsField, ClientEnvField,
    ClientExpectExitField, ClientExpectStdoutField, ClientExpectStderrField, StopSignalField,
    ExpectStopExitField, StopTimeoutField, RestartField, AfterRestartField, ServiceTimeoutField,
)


class SmithServiceTestTarget(Target):
    alias = "smith_service_test"
    core_fields = (*COMMON_TARGET_FIELDS, *SERVICE_FIELDS)
    help = help_text(
        """
        A test of a server image, run by `pants test` (needs root): the image starts detached in
        a container, the test waits until `ready_port` accepts (and `ready_log` matches), runs
        `tcp_checks`, `http_checks` and the `client` sidecar inside the container's own network
        namespace, stops it with `stop_signal` and expects `expect_stop_exit`; with `restart`
        it starts again on the same /write and runs `after_restart`. The output shows each
        check and the time of each phase; a failure shows what was sent, what came back and the
        service's output. Results are cached like other tests; `pants test --force` reruns them.
        """
    )


# -- smith_structure_test -------------------------------------------------------------------------
class StructureImageField(OneOrMoreAddressesField):
    alias = "image"
    required = True
    help = "The image to check (built as `pants package` builds it); nothing of it runs."


def _paths_check(cls, value: Optional[Tuple[str, ...]], address: Address) -> None:
    try:
        structure._abs_paths(list(value or ()), cls.alias)
    except service_spec.SpecError as e:
        raise _error(cls, address, f"{e.message}.")


class PathsPresentField(StringSequenceField):
    alias = "paths_present"
    default = ()
    help = help_text(
        """
        Absolute paths that must exist in the image (files, directories or symlinks; links in
        their parents are followed inside the image, e.g. `/bin/x` through `/bin -> usr/bin`).
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        _paths_check(cls, value, address)
        return value


class PathsAbsentField(PathsPresentField):
    alias = "paths_absent"
    help = "Absolute paths that must not exist in the image, e.g. `[\"/etc/shadow\"]`."


class NoShellField(BoolField):
    alias = "no_shell"
    default = True
    help = help_text(
        """
        The image has no shell: none of sh, bash, dash, ash, ksh, mksh, zsh, csh, tcsh, fish,
        busybox or toybox in /bin, /usr/bin, /sbin, /usr/sbin, /usr/local/bin, /usr/local/sbin.
        """
    )


class FileOwnerField(StringField):
    alias = "file_owner"
    default = "image"
    help = help_text(
        """
        Every file, directory and link of the image is owned by this `UID:GID`, or by the image's
        `User` with `"image"` (the default; names are looked up in the image's /etc/passwd).
        `None`: owners are not checked.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        try:
            return structure.parse_owner(value, cls.alias)
        except service_spec.SpecError as e:
            raise _error(cls, address, f"{e.message}.")


class NoSetuidField(BoolField):
    alias = "no_setuid"
    default = True
    help = "No file has a setuid or setgid bit (in the layers' headers: the unpacker drops them)."


class NoWorldWritableField(BoolField):
    alias = "no_world_writable"
    default = True
    help = "No file or directory is writable by everyone (symlinks aside)."


class ExpectConfigField(JsonValueField):
    alias = "expect_config"
    expected = "a dict"
    help = help_text(
        """
        Image config metadata that must hold, a dict with any of: `entrypoint`, `cmd` (lists),
        `user`, `working_dir` (strings), `exposed_ports` and `volumes` (lists: the same set),
        `labels` and `env` (dicts: these entries with these values).
        """
    )

    @classmethod
    def check(cls, value: Any, address: Address) -> None:
        try:
            structure.validate({"layout": "-", "config": value})
        except service_spec.SpecError as e:
            raise _error(cls, address, f"{e}.")


STRUCTURE_FIELDS = (StructureImageField, PathsPresentField, PathsAbsentField, NoShellField, FileOwnerField,
                    NoSetuidField, NoWorldWritableField, ExpectConfigField)


class SmithStructureTestTarget(Target):
    alias = "smith_structure_test"
    core_fields = (*COMMON_TARGET_FIELDS, *STRUCTURE_FIELDS)
    help = help_text(
        """
        Checks of an image's files and config without running it, run by `pants test` (no root
        needed): `paths_present`, `paths_absent`, `no_shell`, `file_owner`, `no_setuid`,
        `no_world_writable` and `expect_config`. The defaults state smith's conventions: no
        shell, every file owned by the image user, no setuid bits, nothing world-writable.
        """
    )


def target_types():
    return [SmithServiceTestTarget, SmithStructureTestTarget]

