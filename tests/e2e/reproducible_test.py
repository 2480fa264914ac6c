"""Issue 10: same commit + same lockfiles => same image digests, for every buildable example,
whatever the checkout path, umask, TZ, file times (clock) and whether a remote cache is used.

Three checkouts at different paths with different TZ and file times (clock):
  B builds everything for real (empty local store) and writes the results to a fresh BuildGrid;
  C builds everything for real again (local cache off, no remote cache) with another umask and
    SOURCE_DATE_EPOCH in the environment too;
  D has a fresh local store and reads the remote cache: every smith step is a hit (its action
    keys do not depend on the checkout) and the bytes are the ones B wrote.
All three must give byte-identical OCI layouts. (foundation_test covers examples/hello alone.)
examples/hello and examples/redis are built for linux/amd64 and linux/arm64 (issue 19): their
layouts hold both platforms' images, so both platforms' digests are compared; B's arm64 redis
is also read with skopeo + umoci and pyelftools: its programs and libraries are AArch64.
B and D share the usual umask 022 and no SOURCE_DATE_EPOCH in Pants' environment (see
docs/remote-cache.md: cache keys, unlike image bytes, are only shared between like set-ups).
"""
import json
import os
import subprocess
import time

import pytest
from elftools.elf.elffile import ELFFile

from e2e.repo import (
    age_files, buildable_examples, completed_processes, copy_repo, counters, example_layout, free_port,
    pants, remote_cache_ctl, remote_cache_options, smith_steps, tree_bytes,
)
from smith.testutil.debian import require_tools, tool_env

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
    return targets, log, layouts(repo, targets), repo


def assert_same(a, b):
    assert sorted(a) == sorted(b)
    for t in a:
        assert sorted(a[t]) == sorted(b[t]), t
        assert a[t] == b[t], "%s differs in %s" % (t, [k for k in a[t] if a[t][k] != b[t][k]])


def test_every_example_is_built_and_written_to_the_cache(built_b):
    targets, log, _, _ = built_b
    assert "examples/hello:hello" in targets
    steps = smith_steps(completed_processes(log))
    for t in targets:
        assert "Assembling image %s" % t in steps, (t, steps)
    assert counters(log)["remote_cache_write_errors"] == 0


def test_rebuild_in_another_checkout_umask_tz_and_clock_is_identical(built_b, scratch):
    targets, _, expected, _ = built_b
    repo = checkout(scratch, "repro-c/a/much/deeper/place", 86400 * 400)  # 1971
    log = pants(repo, "--stats-log", "--no-local-cache", "package", *targets, umask=0o077,
                env={"TZ": "America/St_Johns", "LC_ALL": "C", "SOURCE_DATE_EPOCH": str(int(time.time()))}).stdout
    assert smith_steps(completed_processes(log)), "nothing was rebuilt: the test proves nothing"
    assert_same(layouts(repo, targets), expected)


def test_remote_cache_hits_from_another_checkout_are_identical(built_b, scratch, server):
    targets, _, expected, _ = built_b
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


MULTI_PLATFORM = ("examples/hello:hello", "examples/redis:redis")


def skopeo(*args) -> bytes:
    return subprocess.run(["skopeo", *args], env=tool_env(), check=True, stdout=subprocess.PIPE).stdout


def test_multi_platform_examples_index_amd64_and_arm64(built_b):
    require_tools("skopeo")
    targets, log, _, repo = built_b
    for t in MULTI_PLATFORM:
        if t not in targets:
            continue
        index = json.loads(skopeo("inspect", "--raw", "oci:%s:latest" % example_layout(repo, t)))
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json", t
        assert [m["platform"] for m in index["manifests"]] == [
            {"architecture": "amd64", "os": "linux"},
            {"architecture": "arm64", "os": "linux", "variant": "v8"}], t
        assert "Assembling image %s (linux/arm64)" % t in smith_steps(completed_processes(log))


def elf_machines(root):
    """{path inside the root: e_machine} of every ELF file under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    f.seek(0)
                    out["/" + str(p.relative_to(root))] = ELFFile(f).header["e_machine"]
    return out


def test_arm64_redis_holds_aarch64_programs_and_libraries(built_b, tmp_path):
    require_tools("skopeo", "umoci")
    targets, _, _, repo = built_b
    if "examples/redis:redis" not in targets:
        pytest.skip("examples/redis has no lockfile in this checkout")
    layout = example_layout(repo, "examples/redis:redis")
    for arch, variant, machine in (("arm64", "v8", "EM_AARCH64"), ("amd64", None, "EM_X86_64")):
        one = tmp_path / arch
        skopeo("--override-arch", arch, *(["--override-variant", variant] if variant else []),
               "copy", "oci:%s:latest" % layout, "oci:%s:%s" % (one, arch))
        rootfs = tmp_path / (arch + "-bundle")
        subprocess.run(["umoci", "raw", "unpack", "--rootless", "--image", "%s:%s" % (one, arch), str(rootfs)],
                       env=tool_env(), check=True)
        machines = elf_machines(rootfs)
        server = rootfs / "usr/bin/redis-server"  # Debian: a symlink to redis-check-rdb
        target = os.readlink(server) if server.is_symlink() else server.name
        assert machines["/usr/bin/" + target] == machine, arch
        libs = {p: m for p, m in machines.items() if ".so" in p}
        assert any("libc.so.6" in p for p in libs) and len(libs) >= 3, (arch, sorted(libs))
        assert set(machines.values()) == {machine}, (arch, machines)
