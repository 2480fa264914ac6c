"""`./pants tailor`: lockfiles of smith_packages targets that no smith_lockfile target owns."""
import pytest
from pants.core.goals.tailor import PutativeTarget, PutativeTargets
from pants.core.target_types import FilesGeneratorTarget
from pants.testutil.rule_runner import QueryRule, RuleRunner

from smith.plugin import register
from smith.plugin.rules.goals import tailor
from smith.plugin.rules.goals.tailor import PutativeSmithLockfilesRequest
from smith.plugin.target_types.packages import SmithLockfilesTarget


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[*tailor.rules(), QueryRule(PutativeTargets, [PutativeSmithLockfilesRequest])],
        target_types=[*register.target_types(), FilesGeneratorTarget],
    )


def _lockfiles(directory, paths, **kwargs):
    return PutativeTarget.for_target_type(SmithLockfilesTarget, directory, "lockfiles", paths, kwargs=kwargs)


def test_unowned_lockfiles_get_a_smith_lockfiles_target(rule_runner):
    rule_runner.write_files({
        # owned: nothing to do
        "ok/BUILD": 'smith_packages(name="a", repository="//:r", packages=["x"])\nsmith_lockfiles(name="lockfiles")\n',
        "ok/a.lock.json": "{}",
        # owned only by a catch-all `files` target: still needs a smith_lockfile
        "web/BUILD": 'smith_packages(name="b", repository="//:r", packages=["x"])\n',
        "web/b.lock.json": "{}",
        "web/old.lock.json": "{}",
        "BUILD": 'files(name="everything", sources=["web/*.json"])\n',
        # a `lockfile` with another name: listed by name
        "odd/BUILD": 'smith_packages(name="c", repository="//:r", packages=["x"], lockfile="pins.json")\n',
        "odd/pins.json": "{}",
        # not generated yet, and lockfiles where no smith_packages target lives: nothing
        "new/BUILD": 'smith_packages(name="d", repository="//:r", packages=["x"])\n',
        "elsewhere/e.lock.json": "{}",
    })
    dirs = ("", "ok", "web", "odd", "new", "elsewhere")
    found = rule_runner.request(PutativeTargets, [PutativeSmithLockfilesRequest(dirs)])
    assert found == PutativeTargets([
        _lockfiles("odd", ["odd/pins.json"], sources=("pins.json",)),
        _lockfiles("web", ["web/b.lock.json", "web/old.lock.json"]),
    ])


def test_only_the_searched_directories_count(rule_runner):
    rule_runner.write_files({
        "web/BUILD": 'smith_packages(name="b", repository="//:r", packages=["x"])\n',
        "web/b.lock.json": "{}",
    })
    assert rule_runner.request(PutativeTargets, [PutativeSmithLockfilesRequest(("other",))]) == PutativeTargets()
