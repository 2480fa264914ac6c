"""smith.linux against the real kernel."""
import errno
import os
import subprocess
import sys
import time

import pytest

from smith import linux
from smith.runtime import libc as runtime_libc

RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


@pytest.fixture
def rename_storm(tmp_path):
    """A process renaming a file back and forth: every rename bumps the kernel's rename seqlock,
    which makes openat2 under RESOLVE_IN_ROOT answer EAGAIN for a path with a ".." step."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    open(a, "w").close()
    code = "import os\nwhile True:\n    os.rename(%r, %r); os.rename(%r, %r)\n" % (a, b, b, a)
    storm = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.2)
    yield
    storm.kill()
    storm.wait()


def _root_with_dotdot_link(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("../../../..", str(root / "escape"))
    return os.open(str(root), os.O_RDONLY | os.O_DIRECTORY)


@pytest.mark.parametrize("wrapper", [linux.openat2, runtime_libc.openat2], ids=["linux", "runtime"])
def test_openat2_retries_when_a_rename_races_dotdot(tmp_path, rename_storm, wrapper):
    # Seen in CI: a busy host made structure checks fail with "openat2 escape/etc: Resource
    # temporarily unavailable". About 4% of calls see EAGAIN during the storm; none may surface.
    root_fd = _root_with_dotdot_link(tmp_path)
    flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        deadline = time.monotonic() + 1.0
        calls = 0
        while time.monotonic() < deadline:
            fd = wrapper(root_fd, "escape/etc", flags, RESOLVE)
            assert os.readlink("/proc/self/fd/%d" % fd) == str(tmp_path / "root" / "etc")
            os.close(fd)
            calls += 1
        assert calls > 1000
    finally:
        os.close(root_fd)


def test_openat2_other_errors_are_not_retried(tmp_path):
    root_fd = _root_with_dotdot_link(tmp_path)
    try:
        with pytest.raises(OSError) as raised:
            linux.openat2(root_fd, "escape/missing", os.O_PATH, RESOLVE)
        assert raised.value.errno == errno.ENOENT
        with pytest.raises(OSError) as raised:
            runtime_libc.openat2(root_fd, "escape/missing", os.O_PATH, RESOLVE)
        assert raised.value.errno == errno.ENOENT
    finally:
        os.close(root_fd)
