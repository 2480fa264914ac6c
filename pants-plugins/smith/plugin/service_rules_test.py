"""smith_service_test / smith_structure_test in Pants' RuleRunner: the image and client are edges,
the checks become the core's spec, and every mistake in a BUILD file is an error naming the
target and the field. Nothing here runs a container."""
import pytest
from pants.backend.python import register as python_backend
from pants.core import register as core
from pants.engine.addresses import Address, Addresses
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import Dependencies, DependenciesRequest, InvalidFieldException
from pants.testutil.rule_runner import QueryRule, RuleRunner

from smith.plugin import register
from smith.plugin.rules.goals.service import (
    SmithServiceTestFieldSet,
    SmithStructureTestFieldSet,
    service_spec_of,
    structure_spec_of,
)

IMAGES = """
file(name="f", source="f.txt")
smith_layer(name="l", dependencies=[":f"])
smith_image(name="server", layers=[":l"])
smith_image(name="cli", layers=[":l"])
"""

GOOD = IMAGES + """
smith_service_test(
    name="svc",
    image=":server",
    ready_port=6379,
    tcp_checks=[{"send": "PING\\r\\n", "expect": "PONG"}],
    http_checks=[{"path": "/", "port": 8080, "headers": {"Content-Type": "html"}}],
    client=":cli",
    client_args=["SET", "k", "v"],
    client_expect_stdout="^OK$",
    stop_signal="sigquit",
    restart=True,
    after_restart=[{"type": "client", "args": ["GET", "k"], "expect_stdout": "^v$"}],
)
smith_structure_test(name="st", image=":server", paths_absent=["/bin/sh"], expect_config={"user": "10:10"})
smith_service_test(name="no-client", image=":server", client_args=["PING"])
smith_service_test(name="no-port", image=":server", tcp_checks=[{"expect": "x"}])
smith_service_test(name="after-without-restart", image=":server", ready_port=1,
                   after_restart=[{"type": "tcp", "expect": "x"}])
"""

BROKEN = {
    "bad-regex": ('tcp_checks=[{"send": "PING", "expect": "+PONG"}]',
                  "The `tcp_checks` field of broken/bad-regex:bad-regex: tcp_checks[0].expect: '+PONG' "
                  "is not a valid Python regular expression"),
    "bad-key": ('http_checks=[{"path": "/", "statsu": 200}]',
                "The `http_checks` field of broken/bad-key:bad-key: http_checks[0]: unknown key 'statsu'"),
    "not-a-list": ('tcp_checks={"expect": "x"}', "tcp_checks` field of broken/not-a-list:not-a-list: must be a list"),
    "bad-type": ('after_restart=[{"type": "udp"}]', "after_restart[0]: must be a dict with \"type\""),
    "bad-signal": ('stop_signal="TREM"', "The `stop_signal` field of broken/bad-signal:bad-signal: 'TREM' is not a signal"),
    "bad-port": ("ready_port=0", "The `ready_port` field of broken/bad-port:bad-port: 0 is not a TCP port"),
    "bad-log": ('ready_log="("', "The `ready_log` field of broken/bad-log:bad-log: '(' is not a valid"),
    "bad-owner": ('file_owner="root"', "The `file_owner` field of broken/bad-owner:bad-owner: 'root' is neither"),
    "bad-config": ('expect_config={"ports": []}', "expect_config` field of broken/bad-config:bad-config: config: unknown key 'ports'"),
    "bad-path": ('paths_absent=["bin/sh"]', "The `paths_absent` field of broken/bad-path:bad-path: 'bin/sh' is not an absolute path"),
}


def _files():
    files = {"svc/f.txt": "x", "svc/BUILD": GOOD}
    for name, (field, _) in BROKEN.items():
        kind = "smith_structure_test" if name in ("bad-owner", "bad-config", "bad-path") else "smith_service_test"
        files["broken/%s/BUILD" % name] = '%s(name="%s", image="//svc:server", %s)\n' % (kind, name, field)
    return files


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[*core.rules(), *python_backend.rules(), *register.rules(),
               QueryRule(Addresses, [DependenciesRequest])],
        target_types=[*core.target_types(), *register.target_types()],
    )
    runner.write_files(_files())
    return runner


def _target(rule_runner, path, name):
    return rule_runner.get_target(Address(path, target_name=name))


def test_image_and_client_are_edges(rule_runner):
    target = _target(rule_runner, "svc", "svc")
    deps = rule_runner.request(Addresses, [DependenciesRequest(target.get(Dependencies),
                                                               include_special_cased_deps=True)])
    assert sorted(a.spec for a in deps) == ["svc:cli", "svc:server"]


def test_fields_become_the_core_spec(rule_runner):
    fs = SmithServiceTestFieldSet.create(_target(rule_runner, "svc", "svc"))
    spec = service_spec_of(fs, "img", "cli-img", read=False)
    assert spec["tcp_checks"] == [{"send": "PING\r\n", "expect": "PONG"}]
    assert spec["client"] == {"layout": "cli-img", "command": [], "args": ["SET", "k", "v"], "env": {},
                              "expect_exit": 0, "expect_stdout": "^OK$"}
    assert (spec["stop_signal"], spec["timeout"], spec["ready_timeout"], spec["restart"]) == ("QUIT", 120, 30, True)
    assert spec["name"] == "svc:svc" and spec["read"] is None
    st = structure_spec_of(SmithStructureTestFieldSet.create(_target(rule_runner, "svc", "st")), "img")
    assert (st["no_shell"], st["file_owner"], st["no_setuid"], st["no_world_writable"]) == (True, "image", True, True)
    assert st["config"] == {"user": "10:10"} and st["paths_absent"] == ["/bin/sh"]


@pytest.mark.parametrize("name, message", [
    ("no-client", "svc:no-client: `client_args` is set but there is no `client` image to run"),
    ("no-port", "The `tcp_checks` field of svc:no-port: tcp_checks[0].port: has no `port` and there is no `ready_port`"),
    ("after-without-restart", "The `after_restart` field of svc:after-without-restart: after_restart: has checks but `restart` is False"),
])
def test_fields_that_only_fail_together(rule_runner, name, message):
    fs = SmithServiceTestFieldSet.create(_target(rule_runner, "svc", name))
    with pytest.raises(InvalidFieldException) as e:
        service_spec_of(fs, "img", None, read=False)
    assert message in str(e.value)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_bad_field_names_target_and_field(rule_runner, name):
    with pytest.raises(ExecutionError) as e:
        _target(rule_runner, "broken/" + name, name)
    assert BROKEN[name][1] in str(e.value), str(e.value)
