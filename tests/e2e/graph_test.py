"""Issue 16 end to end: every input of an image is an edge of Pants' graph.

A one-line change to a lockfile (a security update of one pin) must mark exactly the targets
built from it: CI runs `pants --changed-since=origin/main --changed-dependents=transitive
test package publish`, and an image it does not see is an image it neither re-tests nor
re-publishes.
"""
import subprocess

import pytest

from e2e.repo import copy_repo, pants
from smith.testutil.debian import PATH

REDIS_LOCK = "examples/redis/redis-pkgs.lock.json"


def _git(repo, *args):
    env = {"PATH": PATH, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(repo)}
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, stdout=subprocess.PIPE)


@pytest.fixture(scope="module")
def repo(scratch):
    repo = copy_repo(scratch / "graph" / "smith")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    yield repo
    _git(repo, "checkout", "-q", "--", ".")


def _lines(out: str):
    return sorted(line for line in out.splitlines() if line and not line.startswith(("[", " ", "\x1b")))


def test_dependencies_list_the_lockfile_repository_and_source_image(repo):
    deps = _lines(pants(repo, "dependencies", "examples/redis:redis-pkgs").stdout)
    assert deps == ["examples/redis/redis-pkgs.lock.json:lockfiles", "examples:bookworm"], deps
    deps = _lines(pants(repo, "dependencies", "examples/minimize:cat").stdout)
    assert deps == ["examples/minimize:fat-coreutils"], deps
    files = pants(repo, "filedeps", "--transitive", "examples/redis:redis").stdout
    assert REDIS_LOCK in files.split(), files


def test_a_one_line_lockfile_change_marks_the_image_and_its_test_and_nothing_else(repo):
    lock = repo / REDIS_LOCK
    text = lock.read_text()
    # A new pin of one package (what `generate-lockfiles` writes after a security update).
    first = text.index('"sha256": "') + len('"sha256": "')
    lock.write_text(text[:first] + ("0" if text[first] != "0" else "1") + text[first + 1:])
    try:
        out = pants(repo, "--changed-since=HEAD", "--changed-dependents=transitive", "list").stdout
    finally:
        lock.write_text(text)
    listed = _lines(out)
    smith = sorted(t for t in listed if t.startswith("examples/"))
    built_from_it = [
        "examples/redis/redis-pkgs.lock.json:lockfiles",
        "examples/redis:app",
        "examples/redis:redis",          # the image, and its publish target (`image_repository`)
        "examples/redis:redis-pkgs",
        "examples/redis:redis-server",
        "examples/redis:redis-version",  # its smith_image_test
    ]
    assert set(built_from_it) <= set(smith), listed
    # Anything else of examples/ must be another test of that image (smith_*_test of :redis).
    others = sorted(set(smith) - set(built_from_it))
    assert all(t.startswith("examples/redis:") for t in others), others
    for other in others:
        assert "examples/redis:redis" in _lines(pants(repo, "dependencies", other).stdout), other
    # Besides: only what copies the whole checkout (the e2e tests read every file of it).
    rest = [t for t in listed if not t.startswith("examples/")]
    assert all(t.startswith(("tests/e2e", "//examples/redis/redis-pkgs.lock.json:../../repo-inputs"))
               for t in rest), rest
