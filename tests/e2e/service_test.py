"""Issue 17 end to end: `./pants test` of smith_service_test and smith_structure_test on a copy
of this repo (needs root, user namespaces and the Debian mirror for the example's packages).

The copy's examples/redis gets a second service test, the example's own with `PONG` changed to
`PANG`: it must fail and show that `+PONG` came back. A BUILD file with broken checks must be an
error that names the target and the field, not a traceback.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from e2e.repo import copy_repo, pants, stop_pantsd
from smith.testutil.debian import PATH

BROKEN = '''
smith_service_test(
    name="broken",
    image="//examples/redis:redis",
    ready_port=6379,
    tcp_checks=[{"send": "PING\\r\\n", "expect": "+PONG"}],
)
'''


def result_line(log: str, address: str) -> str:
    found = re.findall(r"^.*\b%s (?:succeeded|failed).*$" % re.escape(address), log, re.M)
    assert len(found) == 1, log[-4000:]
    return found[0]


def pang_copy(build: str) -> str:
    """The example's redis-service target, renamed, with PONG changed to PANG."""
    start = build.index("smith_service_test(\n    name=\"redis-service\"")
    end = build.index("\n)\n", start) + 3
    target = build[start:end]
    assert '"expect": "PONG"' in target
    return "\n" + target.replace('name="redis-service"', 'name="redis-pang"').replace("PONG", "PANG")


@pytest.fixture(scope="module")
def store():
    d = tempfile.mkdtemp(prefix="smith-e2e-store-")
    os.chmod(d, 0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def repo(scratch):
    copy = copy_repo(scratch / "service" / "smith")
    build = (copy / "examples/redis/BUILD").read_text()
    (copy / "examples/redis/BUILD").write_text(build + pang_copy(build))
    (copy / "examples/broken").mkdir()
    (copy / "examples/broken/BUILD").write_text(BROKEN)
    yield copy
    stop_pantsd(copy)


def test_service_tests_pass_and_pang_shows_what_came_back(repo, store):
    run = pants(repo, f"--smith-test-store={store}", "test", "--output=all", "examples/redis:",
                "examples/nginx:", check=False, pantsd=True, timeout=1200)
    log = run.stdout
    assert run.returncode != 0, log[-4000:]  # redis-pang fails on purpose
    for ok in ("examples/redis:redis-service", "examples/redis:redis-structure",
               "examples/redis:redis-cli-structure", "examples/nginx:nginx-service",
               "examples/nginx:nginx-structure"):
        assert "succeeded" in result_line(log, ok), log[-6000:]
    assert "failed" in result_line(log, "examples/redis:redis-pang")
    # The failure names the check, what was sent and what came back, the phases, redis' output.
    for platform in ("linux/amd64 (native)", "linux/arm64/v8 (qemu-aarch64)"):  # each platform runs
        assert ("FAIL examples/redis:redis-pang %s: tcp_checks[0] (tcp, port 6379): the reply does "
                "not match 'PANG'" % platform) in log
    assert "sent     b'PING\\r\\n' (6 bytes)" in log
    assert "received b'+PONG\\r\\n' (7 bytes)" in log
    assert re.search(r"phases: start [0-9.]+ s -> ready [0-9.]+ s -> checks [0-9.]+ s \(failed in checks\)", log)
    assert "----- service stdout" in log and "Ready to accept connections" in log
    # A pass shows the phases and each check; the key survived the restart.
    for platform in (r"linux/amd64 \(native\)", r"linux/arm64/v8 \(qemu-aarch64\)"):
        assert re.search(r"PASS examples/redis:redis-service %s in [0-9.]+ s: start [0-9.]+ s -> ready .* -> "
                         r"after_restart [0-9.]+ s -> stop [0-9.]+ s" % platform, log), log[-6000:]
    assert "stdout b'kept across restarts\\n'" in log
    assert "GET / -> 200" in log
    # Nothing left behind: containers, mounts, id ranges, runtime state.
    assert os.listdir(os.path.join(store, "c")) == []
    with open(os.path.join(store, "ids.json")) as f:
        assert json.load(f)["ranges"] == []
    with open("/proc/self/mountinfo") as f:
        assert os.path.realpath(store) not in f.read()
    listed = subprocess.run(["runc", "list", "-q"], env={"PATH": PATH}, stdout=subprocess.PIPE, text=True).stdout
    assert not any(os.path.basename(store) in c for c in listed.split())


def test_broken_checks_name_the_target_and_field(repo, store):
    run = pants(repo, f"--smith-test-store={store}", "test", "examples/broken:", check=False,
                pantsd=True, timeout=600)
    log = run.stdout
    assert run.returncode != 0
    assert "The `tcp_checks` field of examples/broken:broken: tcp_checks[0].expect: '+PONG' is not a " \
           "valid Python regular expression" in log, log[-4000:]
    assert "Traceback" not in log
