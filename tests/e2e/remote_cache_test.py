"""Issue 10: every smith step is a Process that Pants answers from a real REAPI remote cache.

BuildGrid (remote-cache/start) on a private port and state dir. Package the examples once with
remote cache writes, then package again with an empty local store and empty named caches (a clean
machine): every smith Process must be a remote hit (Pants --stats-log counters, nothing ran to
completion locally) and the image digests identical. Restart the server: still all hits (blobs on
disk, action results in redis with an append-only file).
"""
import shutil
from pathlib import Path

import pytest

from e2e.repo import (
    buildable_examples, copy_repo, completed_processes, counters, example_layout, free_port, manifest_digest,
    pants, remote_cache_ctl, remote_cache_options, smith_steps,
)
from smith.testutil.debian import require_tools


@pytest.fixture(scope="module")
def server(scratch):
    require_tools("redis-server")
    state, port = scratch / "remote-cache-state", free_port()
    remote_cache_ctl("start", state, port)
    yield state, port
    remote_cache_ctl("stop", state, port)


def package(repo: Path, port: int, store: Path, targets):
    """`package` with a private local store and named caches, so each run starts from nothing."""
    log = pants(repo, "--stats-log", *remote_cache_options(port),
                "--local-store-dir=%s" % (store / "lmdb"), "--named-caches-dir=%s" % (store / "named"),
                "package", *targets).stdout
    return log, {t: manifest_digest(example_layout(repo, t)) for t in targets}


@pytest.fixture(scope="module")
def repo(scratch):
    return copy_repo(scratch / "rc" / "smith")  # its own copy: these tests delete dist/


@pytest.fixture(scope="module")
def cold(server, repo, scratch):
    _, port = server
    targets = buildable_examples(repo)
    log, digests = package(repo, port, scratch / "rc-store-cold", targets)
    return targets, log, digests


def assert_all_remote_hits(log: str, cold_log: str):
    c = counters(log)
    assert c["remote_cache_requests_uncached"] == 0, log[-4000:]
    # Pants races each lookup against the local process (speculation delay 0 in SmithProcess): a step
    # may only have completed locally when it won that race against a cache hit.
    ran = smith_steps(completed_processes(log))
    assert len(ran) <= c["remote_cache_speculation_local_completed_first"], (
        "smith steps ran locally despite the warm remote cache: %s\n%s" % (ran, log[-4000:]))
    assert c["remote_cache_read_errors"] == 0 and c["remote_store_missing_digest"] == 0, log[-4000:]
    # Every smith step the cold build ran was asked of the cache (and hit).
    steps = smith_steps(completed_processes(cold_log))
    assert steps, cold_log[-3000:]
    assert c["remote_cache_requests_cached"] >= len(steps), (steps, c)


def test_cold_build_writes_every_smith_step(cold):
    targets, log, _ = cold
    c = counters(log)
    steps = smith_steps(completed_processes(log))
    assert any(s.startswith("Building layer") for s in steps) and any(s.startswith("Assembling image") for s in steps)
    assert c["remote_cache_write_errors"] == 0
    assert c["remote_cache_write_successes"] >= len(steps), (steps, c)


def test_clean_machine_gets_every_smith_step_from_the_cache(cold, repo, scratch, server):
    targets, cold_log, cold_digests = cold
    _, port = server
    shutil.rmtree(repo / "dist")  # the packaged output goes too, not only the caches
    log, digests = package(repo, port, scratch / "rc-store-warm", targets)
    assert digests == cold_digests
    assert_all_remote_hits(log, cold_log)


def test_hits_survive_a_server_restart(cold, repo, scratch, server):
    targets, cold_log, cold_digests = cold
    state, port = server
    remote_cache_ctl("stop", state, port)
    remote_cache_ctl("start", state, port)
    log, digests = package(repo, port, scratch / "rc-store-restart", targets)
    assert digests == cold_digests
    assert_all_remote_hits(log, cold_log)
