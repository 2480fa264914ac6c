"""Issue 10: same commit + same lockfiles => same image digests, for every buildable example,
whatever the checkout path, umask, TZ, file times (clock) and whether a remote cache is used.

Three checkouts at different paths with different TZ and file times (clock):
  B builds everything for real (empty local store) and writes the results to a fresh BuildGrid;
  C builds everything for real again (local cache off, no remote cache) with another umask and
    SOURCE_DATE_EPOCH in the environment too;
  D has a fresh local store and reads the remote cache: every smith step is a hit (its action
    keys do not depend on the checkout) and the bytes are the ones B wrote.
All three must give byte-identical OCI layouts. (foundation_test covers examples/hello alone.)
B and D share the usual umask 022 and no SOURCE_DATE_EPOCH in Pants' environment (see
docs/remote-cache.md: cache keys, unlike image bytes, are only shared between like set-ups).
"""
import time

import pytest

from e2e.repo import (
    age_files, buildable_examples, completed_processes, copy_repo, counters, example_layout, free_port,
    pants, remote_cache_ctl, remote_cache_options, smith_steps, tree_bytes,
)
from smith.testutil.debian import require_tools

YEAR = 365 * 86400


@pytest.fixture(scope="module")
def server(scratch):
    require_tools("redis-server")
    state, port = scratch / "repro-cache-state", free_port()
    remote_cache_ctl("start", state, port)
    yield port
    remote_cache_ctl("stop", state, port)


def checkout(scratch, where: str, clock: float):
    repo = copy_repo(scratch / where / "smith")
    age_files(repo, clock)
    return repo


def layouts(repo, targets):
    return {t: tree_bytes(example_layout(repo, t)) for t in targets}


@pytest.fixture(scope="module")
def built_b(scratch, server):
    repo = checkout(scratch, "repro-b/x", time.time() + 5 * YEAR)
    targets = buildable_examples(repo)
    store = scratch / "repro-b-store"  # empty: everything really runs (as --no-local-cache would)
    log = pants(repo, "--stats-log", *remote_cache_options(server, read=False),
                "--local-store-dir=%s" % (store / "lmdb"), "--named-caches-dir=%s" % (store / "named"),
                "package", *targets, umask=0o022, env={"TZ": "Asia/Tokyo"}).stdout
    return targets, log, layouts(repo, targets)


def assert_same(a, b):
    assert sorted(a) == sorted(b)
    for t in a:
        assert sorted(a[t]) == sorted(b[t]), t
        assert a[t] == b[t], "%s differs in %s" % (t, [k for k in a[t] if a[t][k] != b[t][k]])


def test_every_example_is_built_and_written_to_the_cache(built_b):
    targets, log, _ = built_b
    assert "examples/hello:hello" in targets
    steps = smith_steps(completed_processes(log))
    for t in targets:
        assert "Assembling image %s" % t in steps, (t, steps)
    assert counters(log)["remote_cache_write_errors"] == 0


def test_rebuild_in_another_checkout_umask_tz_and_clock_is_identical(built_b, scratch):
    targets, _, expected = built_b
    repo = checkout(scratch, "repro-c/a/much/deeper/place", 86400 * 400)  # 1971
    log = pants(repo, "--stats-log", "--no-local-cache", "package", *targets, umask=0o077,
                env={"TZ": "America/St_Johns", "LC_ALL": "C", "SOURCE_DATE_EPOCH": str(int(time.time()))}).stdout
    assert smith_steps(completed_processes(log)), "nothing was rebuilt: the test proves nothing"
    assert_same(layouts(repo, targets), expected)


def test_remote_cache_hits_from_another_checkout_are_identical(built_b, scratch, server):
    targets, _, expected = built_b
    repo = checkout(scratch, "repro-d", time.time() - 3 * YEAR)
    store = scratch / "repro-d-store"
    log = pants(repo, "--stats-log", *remote_cache_options(server, write=False),
                "--local-store-dir=%s" % (store / "lmdb"), "--named-caches-dir=%s" % (store / "named"),
                "package", *targets, umask=0o022, env={"TZ": "Pacific/Chatham"}).stdout
    c = counters(log)
    # A step may complete locally only by winning Pants' race against a cache hit (speculation).
    assert len(smith_steps(completed_processes(log))) <= c["remote_cache_speculation_local_completed_first"], log[-4000:]
    assert c["remote_cache_requests_cached"] > 0 and c["remote_cache_requests_uncached"] == 0, log[-4000:]
    assert_same(layouts(repo, targets), expected)
