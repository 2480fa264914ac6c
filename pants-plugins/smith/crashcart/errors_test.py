"""crashcart's errors a user can cause: each exits 1 with a message that says what to do, and
leaves nothing mounted."""
import os
import subprocess
import time

import pytest

from smith.crashcart import cli
from smith.testutil import crashcart as testing
from smith.errors import SmithError
from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools, tool_env


@pytest.fixture(scope="module")
def toolbox():
    return testing.cached_toolbox()


def error_of(res):
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert res.stderr.startswith("crashcart: error: ")
    return res.stderr


def test_unknown_container_id(tmp_path, toolbox):
    msg = error_of(testing.crashcart("--toolbox", toolbox, "--runtime-root", str(tmp_path / "a"),
                                     "--runc-root", str(tmp_path / "b"), "no-such-box"))
    assert 'no container "no-such-box"' in msg and str(tmp_path / "a") in msg


def test_stopped_container(tmp_path, toolbox):
    require_tools("runc", "busybox")
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["true"])
    root = str(tmp_path / "runc")
    cid = "cc-stopped-%d" % os.getpid()
    assert tb.runtime("runc", root, "run", "-d", cid, cwd=bundle, detached=True).returncode == 0
    try:
        deadline = time.monotonic() + 10
        while '"stopped"' not in tb.runtime("runc", root, "state", cid).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        msg = error_of(testing.crashcart("--toolbox", toolbox, "--runc-root", root, cid))
        assert "is not running" in msg and cid in msg and "(runc" in msg
    finally:
        tb.runtime("runc", root, "delete", "--force", cid)


def test_dead_pid(toolbox):
    proc = subprocess.Popen(["true"], env=tool_env())
    proc.wait()
    msg = error_of(testing.crashcart("--toolbox", toolbox, "--runc-root", "/nonexistent",
                                     str(proc.pid)))
    assert "process %d does not exist or has exited" % proc.pid in msg


def test_missing_and_wrong_toolbox(tmp_path):
    target = str(os.getpid())
    msg = error_of(testing.crashcart("--toolbox", str(tmp_path / "nope"), target))
    assert "toolbox %s does not exist" % (tmp_path / "nope") in msg and "--toolbox" in msg
    msg = error_of(testing.crashcart("--toolbox", str(tmp_path), target))
    assert "is not a crashcart toolbox" in msg


def test_not_root(toolbox):
    """As uid 65534 (in a forked child: that user may not read this interpreter's files)."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            cli.main(["--toolbox", toolbox, str(os.getppid())])
            os.write(w, b"no error")
        except SmithError as e:
            os.write(w, str(e).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        msg = f.read()
    os.waitpid(child, 0)
    assert "must run as root" in msg


def test_usage_errors(toolbox):
    res = testing.crashcart("--toolbox", toolbox, "--mount-only", str(os.getpid()), "--", "ls")
    assert res.returncode == 2 and "cannot be given with --mount-only" in res.stderr
    res = testing.crashcart("--toolbox", toolbox, "--bogus", str(os.getpid()))
    assert res.returncode == 2 and "--bogus" in res.stderr
    res = testing.crashcart("--mount-only", "--unmount", str(os.getpid()))
    assert res.returncode == 2 and "not allowed with" in res.stderr
