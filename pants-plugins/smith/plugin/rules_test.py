"""In-process tests of the smith rules (Pants' RuleRunner): the dependency edges every input of a
target must be, and each rule's error paths on bad input. None of these runs a smith Process:
every error here is raised by the glue before the core would run."""
import json

import pytest
from pants.backend.python import register as python_backend
from pants.core import register as core
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.addresses import Address, Addresses
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import (
    Dependencies,
    DependenciesRequest,
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    InvalidFieldException,
)
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error

from smith.packages import lockfile, repo_config
from smith.plugin import register
from smith.plugin.rules.goals.package import SmithPackageFieldSet
from smith.plugin.rules.util.binary import SmithBinaryError, SmithBinaryFieldSet
from smith.plugin.rules.util.command import SmithCommandError
from smith.plugin.rules.util.dependencies import SmithDependencyError
from smith.plugin.rules.util.image import BuiltSmithImage, SmithImageFieldSet, SmithTargetError
from smith.plugin.rules.util.launch import ImageToRunRequest
from smith.plugin.rules.util.minimize import SmithMinimizeError, SmithMinimizeFieldSet, SourceImage
from smith.plugin.rules.util.packages import (
    BuiltSmithPackages,
    RepositoryRequest,
    ResolvedRepository,
    SmithPackagesError,
    SmithPackagesFieldSet,
)
from smith.plugin.rules.util.toolbox import SmithToolboxError
from smith.plugin.rules.util.tree import SmithTree
from smith.plugin.target_types.image import SmithImageRepositoryField, SmithUserField
from smith.plugin.target_types.packages import SmithPackagesExcludesField

REPO = 'smith_repository(name="bookworm", url="http://127.0.0.1:9/debian")\n'
REPO_JSON = repo_config.from_dict(
    {"kind": "deb", "url": "http://127.0.0.1:9/debian", "architectures": ["amd64"],
     "suites": ["bookworm"], "components": ["main"], "trusted": False}, "test").to_json()


def _lock(packages=("hello",), exclude=(), pins=()):
    return json.dumps({"lockfile_version": 1, "repository": REPO_JSON, "excluded": {},
                       "request": lockfile.request(packages, exclude), "packages": list(pins)})


FILES = {
    "img/f.txt": "x",
    "img/BUILD": """
file(name="f", source="f.txt")
smith_layer(name="l", dependencies=[":f"])
smith_image(name="i1", layers=[":l"])
smith_image(name="i2", layers=[":l"])
smith_image(name="bad-layers", layers=[":f"])
smith_image(name="two-bases", layers=[":l"], base=[":i1", ":i2"])
smith_image(name="file-base", layers=[":l"], base=":f")
smith_image(name="old-name", layers=[":l"], repository="127.0.0.1:5000/hello")
smith_binary(name="relative", path="usr/bin/x", root=":f")
smith_binary(name="no-root", path="/usr/bin/x")
smith_binary(name="layer-root", path="/usr/bin/x", root=":l")
smith_toolbox(name="toolbox", packages=[":f"])
smith_image_test(name="not-an-image", image=":f")
smith_minimize(name="by-address", image=":i1")
smith_minimize(name="by-path", image="f.txt")
smith_minimize(name="outside", image="../../../etc/image.tar")
smith_command(name="not-smith", module="os")
smith_remote_image(name="remote", registry="127.0.0.1:5000", repository="hello", digest="sha256:%s")
""" % ("0" * 64),
    "ok/BUILD": REPO + """
smith_lockfiles(name="lockfiles")
smith_packages(name="empty", packages=["hello"], exclude=["libc-bin", "libc-bin"])
smith_packages(name="mismatch", packages=["hello", "more"], lockfile="empty.lock.json")
smith_packages(name="bad-json", packages=["hello"])
smith_packages(name="bad-entry", packages=["hello"])
smith_packages(name="not-generated", packages=["hello"])
smith_image(name="notrepo", layers=[])
smith_packages(name="wrong-repo", repository=":notrepo", packages=["hello"], lockfile="empty.lock.json")
""",
    "ok/empty.lock.json": _lock(exclude=("libc-bin",)),
    "ok/bad-json.lock.json": "{not json",
    "ok/bad-entry.lock.json": _lock(pins=[{"name": "hello", "size": "12"}]),
    "unowned/BUILD": REPO + 'smith_packages(name="pkgs", packages=["hello"])\n',
    "unowned/pkgs.lock.json": _lock(),
    "two-repos/BUILD": REPO + 'smith_packages(name="pkgs", repository=[":bookworm", ":bookworm"], packages=["a"])\n',
    "bad-user/BUILD": 'smith_image(name="i", layers=[], user="ten:ten")\n',
    "bad-push/BUILD": 'smith_image(name="i", layers=[], image_repository="Not A/Path")\n',
    "yaml/smith.yaml": "package: coreutils\npaths:\n- /usr/bin/cat\n",
    "yaml/BUILD": REPO + 'smith_yaml(name="cat", repository=":bookworm")\nsmith_lockfiles(name="lockfiles")\n',
    "yaml/cat.lock.json": _lock(("coreutils",)),
    # Platforms (issue 19)
    "plat/f.txt": "x",
    "plat/BUILD": REPO + """
file(name="f", source="f.txt")
smith_image(name="bad-platform", layers=[], platforms=["linux/mips"])
smith_layer(name="bad-layer-platform", dependencies=[":f"], platforms=["linux/amd64", "linux/amd64"])
smith_image(name="archive-of-two", layers=[], platforms=["linux/amd64", "linux/arm64"], docker_archive=True)
smith_lockfiles(name="lockfiles")
smith_packages(name="amd64-only", packages=["hello"])
smith_binary(name="bin", path="/usr/bin/hello", root=":amd64-only")
smith_layer(name="bin-layer", dependencies=[":bin"])
smith_image(name="arm64-from-amd64-lock", layers=[":bin-layer"], platforms=["linux/arm64"])
""",
    "plat/amd64-only.lock.json": _lock(pins=[{
        "name": "hello", "version": "1", "architecture": "amd64", "url": "http://127.0.0.1:9/h.deb",
        "sha256": "0" * 64, "size": 1, "depends": []}]),
}


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[
            *core.rules(),
            *python_backend.rules(),
            *register.rules(),
            QueryRule(Addresses, [DependenciesRequest]),
            QueryRule(FieldSetsPerTarget, [FieldSetsPerTargetRequest]),
            QueryRule(BuiltSmithPackages, [SmithPackagesFieldSet]),
            QueryRule(ResolvedRepository, [RepositoryRequest]),
            QueryRule(BuiltSmithImage, [SmithImageFieldSet]),
            QueryRule(BuiltSmithImage, [ImageToRunRequest]),
            QueryRule(SmithTree, [SmithBinaryFieldSet]),
            QueryRule(BuiltPackage, [SmithPackageFieldSet]),
            QueryRule(SourceImage, [SmithMinimizeFieldSet]),
        ],
        target_types=[*core.target_types(), *register.target_types()],
    )
    runner.write_files(FILES)
    return runner


def _target(rule_runner, spec: str):
    path, name = spec.split(":")
    name, _, generated = name.partition("#")
    return rule_runner.get_target(Address(path, target_name=name, generated_name=generated or None))


def _deps(rule_runner, spec: str):
    target = _target(rule_runner, spec)
    addresses = rule_runner.request(
        Addresses, [DependenciesRequest(target.get(Dependencies), include_special_cased_deps=True)])
    return sorted(a.spec for a in addresses)


# ----------------------------------------------------------------------------------------------
# Every input is an edge
# ----------------------------------------------------------------------------------------------


def test_smith_packages_depends_on_its_repository_and_lockfile(rule_runner):
    assert _deps(rule_runner, "ok:empty") == ["ok/empty.lock.json:lockfiles", "ok:bookworm"]
    # Another target reading the same lockfile depends on the same smith_lockfile.
    assert _deps(rule_runner, "ok:mismatch") == ["ok/empty.lock.json:lockfiles", "ok:bookworm"]


def test_a_lockfile_not_generated_yet_is_no_edge_and_no_error(rule_runner):
    assert _deps(rule_runner, "ok:not-generated") == ["ok:bookworm"]


def test_a_lockfile_no_target_owns_is_an_error_saying_what_to_add(rule_runner):
    with engine_error(SmithDependencyError, contains='Add `smith_lockfiles(name="lockfiles")` to unowned/BUILD'):
        _deps(rule_runner, "unowned:pkgs")


def test_smith_minimize_depends_on_its_image_by_address_or_by_path(rule_runner):
    assert _deps(rule_runner, "img:by-address") == ["img:i1"]
    assert _deps(rule_runner, "img:by-path") == ["img:f"]


def test_base_layers_root_toolbox_and_test_image_are_edges(rule_runner):
    assert _deps(rule_runner, "img:two-bases") == ["img:i1", "img:i2", "img:l"]
    assert _deps(rule_runner, "img:layer-root") == ["img:l"]
    assert _deps(rule_runner, "img:toolbox") == ["img:f"]
    assert _deps(rule_runner, "img:not-an-image") == ["img:f"]


def test_smith_yaml_repository_is_an_edge_of_the_generator_and_of_its_packages(rule_runner):
    assert "yaml:bookworm" in _deps(rule_runner, "yaml:cat")
    assert _deps(rule_runner, "yaml:cat#packages") == ["yaml/cat.lock.json:lockfiles", "yaml:bookworm"]


# ----------------------------------------------------------------------------------------------
# Renamed fields: the old names still work (deprecated); bad values name target and field
# ----------------------------------------------------------------------------------------------


def test_deprecated_field_names_still_read(rule_runner):
    assert _target(rule_runner, "ok:empty")[SmithPackagesExcludesField].value == ("libc-bin", "libc-bin")
    assert _target(rule_runner, "img:old-name")[SmithImageRepositoryField].value == "127.0.0.1:5000/hello"


@pytest.mark.parametrize("spec, message", [
    ("two-repos:pkgs", "The `repository` field of two-repos:pkgs must name one target"),
    ("bad-user:i", "The `user` field of bad-user:i: 'ten:ten' is not `NAME:UID:GID`"),
    ("bad-push:i", "The `image_repository` field of bad-push:i: 'Not A/Path' is not `REGISTRY/PATH`"),
])
def test_bad_field_values_name_the_target_and_field(rule_runner, spec, message):
    with pytest.raises((ExecutionError, InvalidFieldException)) as e:
        _target(rule_runner, spec)
    assert message in str(e.value)


def test_user_is_name_uid_gid_everywhere_and_uid_gid_still_reads():
    address = Address("x", target_name="i")
    assert SmithUserField("smith:10:10", address).uid_gid(address) == (10, 10)
    assert SmithUserField("0:0", address).uid_gid(address) == (0, 0)


# ----------------------------------------------------------------------------------------------
# Error paths of the rules
# ----------------------------------------------------------------------------------------------


def _packages(rule_runner, spec):
    return rule_runner.request(BuiltSmithPackages, [SmithPackagesFieldSet.create(_target(rule_runner, spec))])


@pytest.mark.parametrize("spec, message", [
    ("ok:empty", "ok:empty: the lockfile ok/empty.lock.json pins no packages."),
    ("ok:mismatch", "ok:mismatch: the lockfile ok/empty.lock.json does not match the target's "
                    "`packages`/`excludes` fields"),
    ("ok:bad-json", "ok:bad-json: the lockfile ok/bad-json.lock.json: not valid JSON"),
    ("ok:bad-entry", "package entry 0: the field 'version' is missing; "
                     "run `./pants generate-lockfiles --resolve=bad-entry`"),
    ("ok:not-generated", "ok:not-generated: the lockfile ok/not-generated.lock.json does not exist; "
                         "run `./pants generate-lockfiles --resolve=not-generated` to create it."),
    ("ok:wrong-repo", "ok:wrong-repo: `repository` must name a smith_repository, but ok:notrepo is a `smith_image`."),
])
def test_smith_packages_errors(rule_runner, spec, message):
    with engine_error(SmithPackagesError, contains=message):
        _packages(rule_runner, spec)


@pytest.mark.parametrize("spec, error, message", [
    ("img:bad-layers", SmithTargetError, "img:bad-layers: `layers` must name smith_layer targets, but img:f is a `file`"),
    ("img:two-bases", SmithTargetError, "img:two-bases: `base` names 2 targets; give one image."),
    ("img:file-base", SmithTargetError, "img:file-base: field `base`: img:f is a `file`, not an image"),
])
def test_smith_image_errors(rule_runner, spec, error, message):
    with engine_error(error, contains=message):
        rule_runner.request(BuiltSmithImage, [SmithImageFieldSet.create(_target(rule_runner, spec))])


@pytest.mark.parametrize("spec, message", [
    ("img:relative", "img:relative: `path` must be absolute inside the root"),
    ("img:no-root", "img:no-root: `root` is empty"),
    ("img:layer-root", "img:layer-root: `root` target img:l is a `smith_layer`, which yields no file tree"),
])
def test_smith_binary_errors(rule_runner, spec, message):
    with engine_error(SmithBinaryError, contains=message):
        rule_runner.request(SmithTree, [SmithBinaryFieldSet.create(_target(rule_runner, spec))])


def test_smith_toolbox_error(rule_runner):
    with engine_error(SmithToolboxError, contains="img:toolbox: `packages` target img:f is a `file`"):
        rule_runner.request(BuiltPackage, [SmithPackageFieldSet.create(_target(rule_runner, "img:toolbox"))])


def test_an_image_test_of_something_that_is_no_image(rule_runner):
    with engine_error(SmithTargetError, contains="img:not-an-image: field `image`: img:f is a `file`, not an image"):
        rule_runner.request(BuiltSmithImage, [
            ImageToRunRequest(Address("img", target_name="f"), "img:not-an-image: field `image`")])


def test_smith_minimize_path_outside_the_repository(rule_runner):
    with engine_error(SmithMinimizeError, contains="img:outside: `image` path '../../../etc/image.tar' leaves the repository"):
        rule_runner.request(SourceImage, [SmithMinimizeFieldSet.create(_target(rule_runner, "img:outside"))])


def test_smith_command_module_outside_smith(rule_runner):
    with engine_error(SmithCommandError, contains="img:not-smith: `module` must be `smith` or a module of the smith package"):
        rule_runner.request(BuiltPackage, [SmithPackageFieldSet.create(_target(rule_runner, "img:not-smith"))])


def test_repository_request_reads_the_smith_repository(rule_runner):
    fs = SmithPackagesFieldSet.create(_target(rule_runner, "ok:empty"))
    repo = rule_runner.request(ResolvedRepository, [fs.repository_request()])
    assert repo.address == Address("ok", target_name="bookworm")
    assert repo.canonical() == REPO_JSON


def test_every_smith_package_kind_is_packaged_by_the_one_member(rule_runner):
    # One PackageFieldSet member for images, toolboxes and commands: each member costs every Pants
    # start rule-graph time (bench/README.md, issue 16).
    targets = [_target(rule_runner, s) for s in ("img:i1", "img:by-address", "img:remote", "img:toolbox", "img:not-smith")]
    found = rule_runner.request(FieldSetsPerTarget, [FieldSetsPerTargetRequest(PackageFieldSet, targets)])
    assert [[type(fs) for fs in per] for per in found.collection] == [[SmithPackageFieldSet]] * 5


# ----------------------------------------------------------------------------------------------
# Platforms (issue 19)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ("plat:bad-platform", "plat:bad-platform: field `platforms` 'linux/mips' is not supported; use one of "
                          "linux/amd64, linux/arm64"),
    ("plat:bad-layer-platform", "plat:bad-layer-platform: field `platforms` lists linux/amd64 twice"),
])
def test_bad_platforms_name_the_target_and_field(rule_runner, spec, message):
    with pytest.raises((ExecutionError, InvalidFieldException)) as e:
        _target(rule_runner, spec)
    assert message in str(e.value)


@pytest.mark.parametrize("spec, error, message", [
    ("plat:archive-of-two", SmithTargetError, "plat:archive-of-two: `docker_archive=True` needs one platform"),
    # Nothing runs: the amd64-only lockfile is refused for arm64 before any package is fetched.
    ("plat:arm64-from-amd64-lock", SmithPackagesError, "plat:amd64-only: the lockfile plat/amd64-only.lock.json "
                                                       "has no pins for architecture arm64 (it was locked for amd64); "
                                                       "add arm64 to the smith_repository's `architectures` and run "
                                                       "`./pants generate-lockfiles --resolve=amd64-only`"),
])
def test_platform_errors(rule_runner, spec, error, message):
    with engine_error(error, contains=message):
        rule_runner.request(BuiltSmithImage, [SmithImageFieldSet.create(_target(rule_runner, spec))])


# ----------------------------------------------------------------------------------------------
# Strangers' words in rule errors and process descriptions are escaped
# ----------------------------------------------------------------------------------------------


def test_a_failed_fetch_names_the_pin_escaped():
    """A lockfile's values are a repository's words: its package name in the Process description
    (the console shows it) and in the error of a failed fetch reached the terminal as is before.
    The rule is driven by hand: its one Get is answered with the failure a real one raises."""
    from pants.engine.process import ProcessExecutionFailure
    from pants.option.global_options import KeepSandboxes
    from smith.plugin.rules.util import packages
    evil = "x\x1b]2;owned\x07"
    located = packages.Pin(lockfile.Pin(evil, "1.0", "amd64", "http://127.0.0.1:9/x.deb", "ab" * 32, 12),
                           Address("ok", target_name="evil"), "ok/evil.lock.json", "evil")
    rule = packages.fetch_and_extract(located)
    [process] = rule.send(None).inputs
    assert process.description == "Fetching and extracting x\\x1b]2;owned\\x07 1.0 (amd64)"
    with pytest.raises(SmithPackagesError) as e:
        rule.throw(ProcessExecutionFailure(1, b"", b"smith extract: error: connection refused\n",
                                           process.description, keep_sandboxes=KeepSandboxes.never))
    assert "cannot fetch x\\x1b]2;owned\\x07 1.0 pinned in ok/evil.lock.json" in str(e.value)
    assert "connection refused" in str(e.value) and "\x1b" not in str(e.value)
