"""smith_layer(python_bytecode=...): the interpreter's tree is an edge of the graph, a target that
yields no tree is an error naming the layer and the field, and the `smith pyc` request carries
exactly the layer's own sources. No smith Process runs here (the core has its own tests in
smith/bytecode/compile_test.py; examples/pyapp builds real layers with it)."""
import pytest
from pants.backend.python import register as python_backend
from pants.core import register as core
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import EMPTY_DIGEST
from pants.engine.target import Dependencies, DependenciesRequest
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error

from smith.plugin import register
from smith.plugin.rules.util.bytecode import BytecodeError, LayerBytecodeRequest
from smith.plugin.rules.util.layer import BuiltSmithLayer, SmithLayerFieldSet

BUILD = """
file(name="f", source="f.py")
smith_packages(name="python", repository=":repo", packages=["python3.11-minimal"])
smith_repository(name="repo", url="http://127.0.0.1:9/debian")
smith_layer(name="app", dependencies=[":f"], prefix="/opt", python_bytecode=":python",
            python_interpreter="/usr/bin/python3.11", excludes=["/opt/skip"])
smith_layer(name="not-a-tree", dependencies=[":f"], python_bytecode=":f")
"""


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[
            *core.rules(),
            *python_backend.rules(),
            *register.rules(),
            QueryRule(Addresses, [DependenciesRequest]),
            QueryRule(BuiltSmithLayer, [SmithLayerFieldSet]),
        ],
        target_types=[*core.target_types(), *register.target_types()],
    )
    runner.write_files({"py/BUILD": BUILD, "py/f.py": "x = 1\n"})
    return runner


def _field_set(rule_runner, name: str) -> SmithLayerFieldSet:
    return SmithLayerFieldSet.create(rule_runner.get_target(Address("py", target_name=name)))


def test_the_interpreter_tree_is_an_edge(rule_runner):
    target = rule_runner.get_target(Address("py", target_name="app"))
    deps = rule_runner.request(Addresses, [DependenciesRequest(target.get(Dependencies),
                                                               include_special_cased_deps=True)])
    assert sorted(a.spec for a in deps) == ["py:f", "py:python"]


def test_a_target_that_yields_no_tree_is_an_error(rule_runner):
    with engine_error(BytecodeError, contains="py:not-a-tree: `python_bytecode` target py:f is a `file`, which yields no file tree"):
        rule_runner.request(BuiltSmithLayer, [_field_set(rule_runner, "not-a-tree")])


def test_the_request_carries_the_layers_sources_and_nothing_else(rule_runner):
    layer_argv = ["layer", "--output", "out", "--uid", "10", "--gid", "10", "--keep-special",
                  "--exclude", "/opt/skip", "--dir", "/opt=in/files", "--tar", "in/trees/0/tree.tar"]
    request = LayerBytecodeRequest.of(_field_set(rule_runner, "app"), "linux/amd64", EMPTY_DIGEST, layer_argv)
    assert request.source_args == ("--exclude", "/opt/skip", "--dir", "/opt=in/files",
                                   "--tar", "in/trees/0/tree.tar")
    assert request.python_interpreter.value == "/usr/bin/python3.11"
    assert request.python_bytecode.value == (":python",)


def test_literal_excludes_under_the_prefix_leave_the_process_input():
    """So that an app-only change leaves the deps layer's (and its .pyc's) Process input as it
    was: examples/pyapp's deps layer excludes the app's files by literal paths."""
    from smith.plugin.rules.util.layer import excluded_file_globs

    excludes = ["/opt/pyapp/PEX-INFO", "/opt/pyapp/pyapp/", "opt/pyapp/__main__.py", "/opt/*.txt",
                "/usr/share/doc", "*.pyc", "/opt/pyapp/[ab]"]
    assert excluded_file_globs("/opt", excludes) == (
        "!pyapp/PEX-INFO", "!pyapp/PEX-INFO/**", "!pyapp/pyapp", "!pyapp/pyapp/**",
        "!pyapp/__main__.py", "!pyapp/__main__.py/**")
    assert excluded_file_globs("/", ["/usr/share/doc"]) == ("!usr/share/doc", "!usr/share/doc/**")
    assert excluded_file_globs("/opt", ["/opt"]) == ()  # the whole prefix: left to the Process
