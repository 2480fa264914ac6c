"""smith_minimize(trace=...) in Pants' RuleRunner: the traced tests are edges, a `trace` entry that
is no test is an error naming target and field before anything is built, and a replay is the
test's own launch command with the image under test swapped. Nothing here runs a container."""
import json

import pytest
from pants.backend.python import register as python_backend
from pants.core import register as core
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestContents
from pants.engine.target import Dependencies, DependenciesRequest
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error

from smith.plugin import register
from smith.plugin.rules.goals.service import SPEC
from smith.plugin.rules.util.image import BuiltSmithImage
from smith.plugin.rules.util.minimize import SmithMinimizeFieldSet, TraceRequests, TraceTests
from smith.plugin.rules.util.minimize_trace import Replay, ReplayRequest, SmithMinimizeTraceError, trace_argv

BUILD = """
file(name="f", source="f.txt")
file(name="conf", source="read/conf.txt")
smith_layer(name="l", dependencies=[":f"])
smith_image(name="full", layers=[":l"], entrypoint=["/x"])
smith_service_test(name="svc", image=":full", ready_port=8080, read_files=[":conf"],
                   http_checks=[{"path": "/", "status": 200}])
smith_image_test(name="once", image=":full", args=["--check"], expect_stdout="ok")
smith_minimize(name="traced", image=":full", trace=[":svc", ":once"])
smith_minimize(name="traces-an-image", image=":full", trace=[":svc", ":full"])
smith_minimize(name="traces-a-file", image=":full", trace=":f")
files(name="idx-files", sources=["idx/**"])
smith_minimize(name="arm", image="idx", image_tag="v1", platform="linux/arm64", trace=[":svc"])
smith_minimize(name="default-platform", image="idx", trace=[":svc", ":once"])
"""


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[*core.rules(), *python_backend.rules(), *register.rules(),
               QueryRule(Addresses, [DependenciesRequest]),
               QueryRule(TraceTests, [SmithMinimizeFieldSet]),
               QueryRule(Replay, [ReplayRequest]),
               QueryRule(TraceRequests, [SmithMinimizeFieldSet]),
               QueryRule(DigestContents, [Digest])],
        target_types=[*core.target_types(), *register.target_types()],
    )
    runner.write_files({"m/f.txt": "x", "m/read/conf.txt": "c", "m/BUILD": BUILD,
                        "m/idx/oci-layout": '{"imageLayoutVersion": "1.0.0"}', "m/idx/index.json": "{}"})
    runner.set_options(["--smith-test-runtime=runc"])  # no runtime zipapp to package
    return runner


def _fs(rule_runner, name):
    return SmithMinimizeFieldSet.create(rule_runner.get_target(Address("m", target_name=name)))


def test_the_traced_tests_are_edges(rule_runner):
    target = rule_runner.get_target(Address("m", target_name="traced"))
    deps = rule_runner.request(
        Addresses, [DependenciesRequest(target.get(Dependencies), include_special_cased_deps=True)])
    assert sorted(a.spec for a in deps) == ["m:full", "m:once", "m:svc"]
    tests = rule_runner.request(TraceTests, [_fs(rule_runner, "traced")])
    assert [a.spec for a in tests.addresses] == ["m:once", "m:svc"]  # sorted: argv and caches stable


@pytest.mark.parametrize("name,message", [
    ("traces-an-image", "m:traces-an-image: field `trace`: m:full is a `smith_image`, not a "
                        "`smith_service_test` or `smith_image_test`"),
    ("traces-a-file", "m:traces-a-file: field `trace`: m:f is a `file`, not a `smith_service_test`"),
])
def test_a_trace_entry_that_is_no_test_names_target_and_field(rule_runner, name, message):
    with engine_error(SmithMinimizeTraceError, contains=message):
        rule_runner.request(TraceTests, [_fs(rule_runner, name)])


def _replay(rule_runner, test):
    image = BuiltSmithImage(EMPTY_DIGEST, "some/minimized-layout", "sha256:" + "0" * 64)
    return rule_runner.request(Replay, [ReplayRequest(Address("m", target_name=test),
                                                      Address("m", target_name="traced"), image)])


def test_a_service_test_replays_its_own_spec_on_the_image_given(rule_runner):
    replay = _replay(rule_runner, "svc")
    assert replay.argv[:4] == ("launch", "service", "--spec", SPEC) and replay.runtime_path == "runc"
    files = {c.path: c.content for c in rule_runner.request(DigestContents, [replay.digest])}
    spec = json.loads(files[SPEC])
    assert spec["layout"] == "some/minimized-layout" and spec["name"] == "m:svc"
    assert spec["http_checks"] == [{"path": "/", "status": 200}] and spec["read"] == "__read"
    assert files["__read/conf.txt"] == b"c"


def test_an_image_test_replays_its_own_command_on_the_image_given(rule_runner):
    argv = _replay(rule_runner, "once").argv
    assert argv[:4] == ("launch", "test", "--layout", "some/minimized-layout")
    assert argv[argv.index("--expect-stdout") + 1] == "ok" and argv[-2:] == ("--", "--check")


def test_a_service_test_replays_with_the_emulation_pants_test_uses(rule_runner):
    argv = _replay(rule_runner, "svc").argv
    assert argv[argv.index("--emulation") + 1] == "install"


@pytest.mark.parametrize("target,layout,platform,traces", [
    ("arm", "m/idx:v1", "linux/arm64", ["traces/0.json"]),
    ("default-platform", "m/idx", "linux/amd64", ["traces/0.json", "traces/1.json"]),
])
def test_the_trace_runs_the_platform_being_minimized(rule_runner, target, layout, platform, traces):
    requests = rule_runner.request(TraceRequests, [_fs(rule_runner, target)]).requests
    assert [r.output for r in requests] == traces and [r.image_path for r in requests] == ["m/idx"] * len(traces)
    for request in requests:
        argv = trace_argv(request)
        assert argv[:argv.index("--")][-2:] == ["--platform", platform]  # smith trace's own option
        assert argv[argv.index("--") + 1:] == list(request.replay.argv)
    spec = {c.path: c.content for c in rule_runner.request(DigestContents, [requests[-1].replay.digest])}[SPEC]
    assert json.loads(spec)["layout"] == layout


def test_a_failed_replays_output_is_quoted_escaped():
    """The replayed test's output (the image's programs wrote it) is quoted in the error Pants
    prints: escaped, where an OSC reached the terminal as is before; newlines stay."""
    from types import SimpleNamespace
    from smith.plugin.rules.util.minimize_trace import _output
    result = SimpleNamespace(stdout=b"FAIL x\n\x1b]2;owned\x07\n", stderr=b"")
    assert _output(result) == "FAIL x\n\\x1b]2;owned\\x07\n"
