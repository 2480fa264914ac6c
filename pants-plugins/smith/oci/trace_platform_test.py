"""smith trace of a multi-platform image traces the platform asked for (smith_minimize's
`platform`), a foreign one through qemu, never every platform of the index mixed; a platform the
image lacks is a clear error before anything runs."""
import os
import subprocess

import pytest

from smith.errors import SmithError
from smith.launch import trace_cli
from smith.oci import trace
from smith.testutil.debian import require_tools
from smith.testutil.launch import leftovers, new_store, remove_store, smith_cmd, smith_env
from smith.testutil.qemu import busybox_index, require_emulation

pytestmark = pytest.mark.debian_mirror


@pytest.fixture(scope="module")
def index():
    return busybox_index()


def test_the_launcher_is_told_the_platform_of_an_index(index):
    assert trace_cli.launch_platform(index, "linux/arm64") == ["--platform", "linux/arm64/v8"]
    assert trace_cli.launch_platform(index, "linux/amd64") == ["--platform", "linux/amd64"]
    with pytest.raises(SmithError, match="cannot trace %s: the image has no linux/riscv64 image; it "
                                         "offers linux/amd64, linux/arm64/v8" % index):
        trace_cli.launch_platform(index, "linux/riscv64")


def _trace(index, tmp_path, store, platform, machine):
    return subprocess.run(
        smith_cmd("trace", "--output", str(tmp_path / "t.json"), "--image", index, "--platform", platform,
                  "--", "launch", "test", "--layout", index, "--store", store, "--runtime", "runc",
                  "--expect-stdout", "^%s$" % machine),
        env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)


@pytest.mark.parametrize("platform,machine", [("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")])
def test_only_the_platform_asked_for_runs_and_is_traced(index, tmp_path, platform, machine):
    """Without --platform the launcher ran both images of the index, so expecting one machine's
    output failed the other and nothing was traced."""
    if os.geteuid() != 0:
        pytest.skip("tracing runs containers and fanotify: root")
    require_tools("runc")
    if machine == "aarch64":
        require_emulation("linux/arm64")
    store = new_store()
    try:
        proc = _trace(index, tmp_path, store, platform, machine)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len([line for line in proc.stdout.splitlines() if line.startswith("PASS")]) == 1, proc.stdout
        got = trace.load_trace(str(tmp_path / "t.json"))
        assert "/bin/busybox" in got.executed  # the guest binary, also when qemu runs it
        assert leftovers(store) == []
    finally:
        remove_store(store)
