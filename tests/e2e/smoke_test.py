"""Issue 7 end to end: `./pants test` of smith_image_test targets and `./pants run` of smith_image
on a copy of this repo, through smith's own runtime (needs root and user namespaces).

The copy gets a second example beside examples/hello: a static busybox image whose tests cover
`command`, `args`, `env`, `read_files`, `expect_exit`, `expect_stderr`, `timeout` and a failure.
"""
import os
import re
import shutil
import stat
import tempfile

import pytest

from e2e.repo import copy_repo, pants, stop_pantsd
from smith.testutil.debian import require_tools

GREETING = "Hello from a smith microcontainer!"

BUSYBOX_BUILD = '''
files(name="busybox", sources=["bin/busybox"])

files(name="greeting", sources=["read/greeting"])

smith_layer(name="app", dependencies=[":busybox"])  # bin/busybox -> /bin/busybox

smith_image(
    name="bb",
    layers=[":app"],
    entrypoint=["/bin/busybox"],
    cmd=["echo", "the default cmd"],
    env={"PATH": "/bin", "GREETING": "from the image"},
)

smith_image_test(
    name="read",
    image=":bb",
    command=["/bin/busybox", "cat", "/read/greeting"],
    read_files=[":greeting"],
    expect_stdout="^hi from read/$",
)

smith_image_test(
    name="env-args",
    image=":bb",
    args=["sh", "-c", "echo $GREETING; id -u; echo x > /x; exit 3"],
    env={"GREETING": "from the test"},
    expect_exit=3,
    expect_stdout="^from the test\\n10$",
    expect_stderr="Read-only file system",
)

smith_image_test(name="timeout", image=":bb", args=["sleep", "60"], timeout=2)
'''

WRONG_HELLO = '''
smith_image_test(name="hello-wrong", image=":hello", expect_stdout="^Goodbye")
'''


def result_line(log: str, address: str) -> str:
    found = re.findall(r"^.*\b%s (?:succeeded|failed).*$" % re.escape(address), log, re.M)
    assert len(found) == 1, log[-4000:]
    return found[0]


@pytest.fixture(scope="module")
def store():
    """A store of our own; containers in user namespaces must be able to walk to it (o+x)."""
    d = tempfile.mkdtemp(prefix="smith-e2e-store-")
    os.chmod(d, 0o711)
    yield d
    try:
        assert os.listdir(os.path.join(d, "c")) == [], "containers left behind in the store"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def repo(scratch, store):
    require_tools("busybox")
    copy = copy_repo(scratch / "smoke" / "smith")
    yield copy
    stop_pantsd(copy)


@pytest.fixture(scope="module")
def prepared(repo):
    copy = repo
    with open(copy / "examples/hello/BUILD", "a") as f:
        f.write(WRONG_HELLO)
    bb = copy / "examples/bb"
    (bb / "bin").mkdir(parents=True)
    (bb / "read").mkdir()
    shutil.copy("/bin/busybox", bb / "bin/busybox")
    (bb / "read/greeting").write_text("hi from read/\n")
    (bb / "BUILD").write_text(BUSYBOX_BUILD)
    return copy


def smith_pants(repo, *args, check=True):
    """`./pants ARGS` with one pantsd for this module's five runs: startup is most of a run's
    15-60 s, a warm pantsd answers in a few seconds."""
    return pants(repo, *args, check=check, pantsd=True, timeout=900)


@pytest.fixture(scope="module")
def first_run(prepared, store):
    log = smith_pants(prepared, f"--smith-test-store={store}", "test", "examples/hello:",
                "examples/bb:", check=False)
    return log


def test_tests_pass_and_fail_with_the_containers_output(first_run, store):
    log = first_run.stdout
    assert first_run.returncode != 0, log[-4000:]  # two of the targets fail on purpose
    for ok in ("examples/hello:hello-test", "examples/bb:read", "examples/bb:env-args"):
        assert "✓ %s succeeded" % ok in result_line(log, ok)
    assert "failed" in result_line(log, "examples/hello:hello-wrong")
    assert "failed" in result_line(log, "examples/bb:timeout")
    # The failure says why and shows what the container printed.
    assert "stdout does not match '^Goodbye'" in log
    assert "----- container stdout (35 bytes) -----\n" + GREETING in log
    assert "the container did not finish before the timeout" in log
    # Layers were unpacked into our store, and smith-runtime installed where containers reach it.
    layers = os.listdir(os.path.join(store, "layers"))
    assert layers, "no layers in the store"
    runtime = os.listdir(os.path.join(store, "runtime"))
    assert len(runtime) == 1 and runtime[0].startswith("smith-runtime-")
    assert stat.S_IMODE(os.stat(os.path.join(store, "runtime", runtime[0])).st_mode) == 0o755


def test_results_are_cached_and_test_force_reruns(first_run, repo, store):
    again = smith_pants(repo, f"--smith-test-store={store}", "test", "examples/hello:hello-test",
                  "examples/hello:hello-wrong", check=False).stdout
    # A success is cached; a failure is not (ProcessCacheScope.SUCCESSFUL) and runs again.
    assert "(cached locally)" in result_line(again, "examples/hello:hello-test") or \
        "memoized" in result_line(again, "examples/hello:hello-test"), again[-3000:]
    wrong = result_line(again, "examples/hello:hello-wrong")
    assert "failed" in wrong and "cached" not in wrong
    assert GREETING in again

    forced = smith_pants(repo, f"--smith-test-store={store}", "test", "--test-force",
                   "examples/hello:hello-test").stdout
    line = result_line(forced, "examples/hello:hello-test")
    assert "succeeded" in line and "cached" not in line and "memoized" not in line, forced[-3000:]


def test_run_prints_the_greeting_and_returns_the_exit_code(first_run, repo, store):
    hello = smith_pants(repo, f"--smith-test-store={store}", "run", "examples/hello:hello")
    assert GREETING + "\n" in hello.stdout

    # Args after `--` replace the image's Cmd; the container's exit code is Pants' exit code.
    bb = smith_pants(repo, f"--smith-test-store={store}", "run", "examples/bb:bb", "--",
               "sh", "-c", "echo replaced $GREETING; exit 7", check=False)
    assert bb.returncode == 7, bb.stdout[-3000:]
    assert "replaced from the image\n" in bb.stdout
    assert "the default cmd" not in bb.stdout
