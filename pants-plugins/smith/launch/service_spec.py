"""What a service test does, checked: the JSON spec of `smith.launch service --spec FILE`.

The Pants target `smith_service_test` writes this spec; its fields have the same names, so
validate() errors name the field (`tcp_checks[1].expect: ...`) and the glue adds the target.

    {"layout": "IMAGE[:TAG]", "command": [...], "args": [...], "env": {K: V}, "read": DIR,
     "network": "none",
     "ready_port": 6379, "ready_log": REGEX, "ready_timeout": 30,
     "tcp_checks": [{"send": "PING\\r\\n", "expect": "PONG", "port": P, "timeout": 5}],
     "http_checks": [{"method": "GET", "path": "/", "status": 200, "body": REGEX,
                      "headers": {NAME: REGEX}, "request_headers": {NAME: VALUE}, "data": "",
                      "port": P, "timeout": 5}],
     "client": {"layout": "IMAGE[:TAG]", "command": [...], "args": [...], "env": {...},
                "expect_exit": 0, "expect_stdout": REGEX, "expect_stderr": REGEX, "timeout": 30},
     "stop_signal": "TERM", "expect_stop_exit": 0, "stop_timeout": 10,
     "restart": false,
     "after_restart": [{"type": "tcp"|"http"|"client", ...same keys as above...}],
     "timeout": 120}

A `client` check of after_restart runs the client image of `client` with its own command,
args, env and expectations.
"""
import re
import signal
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from smith.errors import SmithError

MAX_CHECKS = 100
DEFAULT_CHECK_TIMEOUT = 5.0
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


class SpecError(SmithError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__("%s: %s" % (field, message))
        self.field = field
        self.message = message


class TcpCheck(NamedTuple):
    where: str          # e.g. "tcp_checks[0]"
    send: bytes
    expect: "re.Pattern"
    port: int
    timeout: float


class HttpCheck(NamedTuple):
    where: str
    method: str
    path: str
    status: int
    body: Optional["re.Pattern"]
    headers: Dict[str, "re.Pattern"]
    request_headers: Dict[str, str]
    data: bytes
    port: int
    timeout: float


class ClientCheck(NamedTuple):
    where: str
    layout: str
    command: List[str]
    args: List[str]
    env: Dict[str, str]
    expect_exit: int
    expect_stdout: Optional["re.Pattern"]
    expect_stderr: Optional["re.Pattern"]
    timeout: float


class Spec(NamedTuple):
    name: str
    layout: str
    command: List[str]
    args: List[str]
    env: Dict[str, str]
    read: Optional[str]
    ready_port: Optional[int]
    ready_log: Optional["re.Pattern"]
    ready_timeout: float
    checks: List[Any]            # TcpCheck, then HttpCheck, then the client: in this order
    stop_signal: str
    expect_stop_exit: int
    stop_timeout: float
    restart: bool
    after_restart: List[Any]
    timeout: float


# -- small typed readers --------------------------------------------------------------------------
def _type_name(value: Any) -> str:
    return type(value).__name__ if value is not None else "None"


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, "must be a whole number, not %r" % (value,))
    if not low <= value <= high:
        raise SpecError(field, "must be between %d and %d, not %d" % (low, high, value))
    return value


def _seconds(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SpecError(field, "must be a positive number of seconds, not %r" % (value,))
    if value > 86400:
        raise SpecError(field, "must be at most 86400 seconds, not %r" % (value,))
    return float(value)


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise SpecError(field, "must be a string, not %s %r" % (_type_name(value), value))
    return value


def _strs(value: Any, field: str) -> List[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SpecError(field, "must be a list of strings, not %r" % (value,))
    return list(value)


def _str_dict(value: Any, field: str) -> Dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise SpecError(field, "must be a dict of strings to strings, not %r" % (value,))
    return dict(value)


def regex(value: Any, field: str) -> "re.Pattern":
    pattern = _str(value, field)
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as e:
        raise SpecError(field, "%r is not a valid Python regular expression: %s" % (pattern, e))


def _bytes(value: Any, field: str) -> bytes:
    text = _str(value, field)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise SpecError(field, "cannot be encoded as UTF-8 (%s)" % e)


def _keys(d: Any, field: str, allowed: Tuple[str, ...]) -> Dict[str, Any]:
    if not isinstance(d, dict):
        raise SpecError(field, "must be a dict, not %s %r" % (_type_name(d), d))
    unknown = sorted(k for k in d if k not in allowed)
    if unknown:
        raise SpecError(field, "unknown key%s %s; the keys are %s" % (
            "s" if len(unknown) > 1 else "", ", ".join(map(repr, unknown)), ", ".join(allowed)))
    return d


def _port(value: Any, field: str, default: Optional[int]) -> int:
    if value is None:
        if default is None:
            raise SpecError(field, "has no `port` and there is no `ready_port` to default to; "
                                   "give one of them")
        return default
    return _int(value, field, 1, 65535)


def signal_name(value: Any, field: str) -> str:
    """A signal as the runtime's `kill` takes it: TERM, SIGTERM, 15 -> "TERM"/"15"."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else _str(value, field)
    if text.isdigit() and 1 <= int(text) <= 64:
        return text
    name = text.upper()
    name = name[3:] if name.startswith("SIG") else name
    if name and hasattr(signal, "SIG" + name) and not name.startswith("_"):
        return name
    raise SpecError(field, "%r is not a signal; use a name such as TERM, INT or QUIT, or a "
                           "number" % (value,))


# -- checks ---------------------------------------------------------------------------------------
TCP_KEYS = ("send", "expect", "port", "timeout")
HTTP_KEYS = ("method", "path", "status", "body", "headers", "request_headers", "data", "port",
             "timeout")
CLIENT_KEYS = ("command", "args", "env", "expect_exit", "expect_stdout", "expect_stderr", "timeout")


def tcp_check(d: Any, where: str, ready_port: Optional[int], extra: Tuple[str, ...] = ()) -> TcpCheck:
    d = _keys(d, where, TCP_KEYS + extra)
    if "expect" not in d:
        raise SpecError(where, "needs `expect`: a regex the reply must contain, e.g. \"PONG\"")
    return TcpCheck(where, _bytes(d.get("send", ""), where + ".send"),
                    regex(d["expect"], where + ".expect"),
                    _port(d.get("port"), where + ".port", ready_port),
                    _seconds(d.get("timeout", DEFAULT_CHECK_TIMEOUT), where + ".timeout"))


def http_check(d: Any, where: str, ready_port: Optional[int], extra: Tuple[str, ...] = ()) -> HttpCheck:
    d = _keys(d, where, HTTP_KEYS + extra)
    method = _str(d.get("method", "GET"), where + ".method").upper()
    if method not in METHODS:
        raise SpecError(where + ".method", "%r is not one of %s" % (d.get("method"), ", ".join(METHODS)))
    path = _str(d.get("path", "/"), where + ".path")
    if not path.startswith("/") or any(c in path for c in " \r\n\t"):
        raise SpecError(where + ".path", "%r must start with / and hold no spaces or line breaks "
                                         "(percent-encode them)" % path)
    headers = {k: regex(v, "%s.headers[%r]" % (where, k))
               for k, v in _str_dict(d.get("headers", {}), where + ".headers").items()}
    request_headers = _str_dict(d.get("request_headers", {}), where + ".request_headers")
    for k, v in request_headers.items():
        if not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", k) or any(c in v for c in "\r\n"):
            raise SpecError(where + ".request_headers", "%r: %r is not a valid header" % (k, v))
    return HttpCheck(where, method, path, _int(d.get("status", 200), where + ".status", 100, 599),
                     regex(d["body"], where + ".body") if d.get("body") is not None else None,
                     headers, request_headers, _bytes(d.get("data", ""), where + ".data"),
                     _port(d.get("port"), where + ".port", ready_port),
                     _seconds(d.get("timeout", DEFAULT_CHECK_TIMEOUT), where + ".timeout"))


def client_check(d: Any, where: str, layout: Optional[str], extra: Tuple[str, ...] = ()) -> ClientCheck:
    d = _keys(d, where, CLIENT_KEYS + extra)
    if layout is None:
        raise SpecError(where, "is a client check, but the test has no `client` image")

    def opt_regex(key: str) -> Optional["re.Pattern"]:
        return regex(d[key], where + "." + key) if d.get(key) is not None else None

    return ClientCheck(where, layout, _strs(d.get("command", []), where + ".command"),
                       _strs(d.get("args", []), where + ".args"),
                       _str_dict(d.get("env", {}), where + ".env"),
                       _int(d.get("expect_exit", 0), where + ".expect_exit", 0, 255),
                       opt_regex("expect_stdout"), opt_regex("expect_stderr"),
                       _seconds(d.get("timeout", 30), where + ".timeout"))


def _list(value: Any, field: str) -> List[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise SpecError(field, "must be a list of dicts, not %s %r" % (_type_name(value), value))
    if len(value) > MAX_CHECKS:
        raise SpecError(field, "has %d checks; at most %d" % (len(value), MAX_CHECKS))
    return list(value)


def typed_check(d: Any, where: str, ready_port: Optional[int], client_layout: Optional[str]) -> Any:
    if not isinstance(d, dict) or d.get("type") not in ("tcp", "http", "client"):
        raise SpecError(where, "must be a dict with \"type\": \"tcp\", \"http\" or \"client\" "
                               "(plus that check's keys), not %r" % (d,))
    if d["type"] == "tcp":
        return tcp_check(d, where, ready_port, ("type",))
    if d["type"] == "http":
        return http_check(d, where, ready_port, ("type",))
    return client_check(d, where, client_layout, ("type",))


SPEC_KEYS = ("name", "layout", "command", "args", "env", "read", "network", "ready_port", "ready_log",
             "ready_timeout", "tcp_checks", "http_checks", "client", "stop_signal",
             "expect_stop_exit", "stop_timeout", "restart", "after_restart", "timeout")


def validate(d: Any) -> Spec:
    """The spec, checked; SpecError names the first field that is wrong."""
    d = _keys(d, "spec", SPEC_KEYS)
    if not isinstance(d.get("layout"), str) or not d["layout"]:
        raise SpecError("layout", "the image to test (IMAGE[:TAG]) is required")
    if d.get("network", "none") != "none":
        raise SpecError("network", "a service test runs in its own network namespace (\"none\")")
    ready_port = _int(d["ready_port"], "ready_port", 1, 65535) if d.get("ready_port") is not None else None
    client = None
    checks: List[Any] = []
    for i, c in enumerate(_list(d.get("tcp_checks"), "tcp_checks")):
        checks.append(tcp_check(c, "tcp_checks[%d]" % i, ready_port))
    for i, c in enumerate(_list(d.get("http_checks"), "http_checks")):
        checks.append(http_check(c, "http_checks[%d]" % i, ready_port))
    if d.get("client") is not None:
        c = _keys(d["client"], "client", CLIENT_KEYS + ("layout",))
        layout = _str(c.get("layout"), "client.layout")
        client = layout
        checks.append(client_check({k: v for k, v in c.items() if k != "layout"}, "client", layout))
    after = [typed_check(c, "after_restart[%d]" % i, ready_port, client)
             for i, c in enumerate(_list(d.get("after_restart"), "after_restart"))]
    restart = d.get("restart", False)
    if not isinstance(restart, bool):
        raise SpecError("restart", "must be True or False, not %r" % (restart,))
    if after and not restart:
        raise SpecError("after_restart", "has checks but `restart` is False; set restart=True")
    ready_log = regex(d["ready_log"], "ready_log") if d.get("ready_log") is not None else None
    return Spec(
        name=_str(d.get("name", d["layout"]), "name"),
        layout=d["layout"],
        command=_strs(d.get("command", []), "command"),
        args=_strs(d.get("args", []), "args"),
        env=_str_dict(d.get("env", {}), "env"),
        read=_str(d["read"], "read") if d.get("read") is not None else None,
        ready_port=ready_port,
        ready_log=ready_log,
        ready_timeout=_seconds(d.get("ready_timeout", 30), "ready_timeout"),
        checks=checks,
        stop_signal=signal_name(d.get("stop_signal", "TERM"), "stop_signal"),
        expect_stop_exit=_int(d.get("expect_stop_exit", 0), "expect_stop_exit", 0, 255),
        stop_timeout=_seconds(d.get("stop_timeout", 10), "stop_timeout"),
        restart=restart,
        after_restart=after,
        timeout=_seconds(d.get("timeout", 120), "timeout"),
    )
