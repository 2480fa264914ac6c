"""smith minimize of a multi-platform image: the platform asked for is minimized (default: the
host's); a platform the image does not have is a clear error."""
import struct
import subprocess
import tarfile

import pytest

from smith.testutil.launch import smith_cmd, smith_env
from smith.testutil.qemu import busybox_index

pytestmark = pytest.mark.debian_mirror
EM = {62: "x86_64", 183: "aarch64"}  # ELF e_machine


def machine_of_busybox(tree_tar) -> str:
    with tarfile.open(str(tree_tar)) as t:
        header = t.extractfile("bin/busybox").read(20)
    return EM[struct.unpack("<H", header[18:20])[0]]


@pytest.mark.parametrize("platform,machine", [(None, "x86_64"), ("linux/arm64", "aarch64"),
                                              ("linux/amd64", "x86_64")])
def test_the_platform_asked_for_is_minimized(tmp_path, platform, machine):
    argv = smith_cmd("minimize", "--output", str(tmp_path / "t.tar"), busybox_index())
    if platform:
        argv[-1:-1] = ["--platform", platform]
    proc = subprocess.run(argv, env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr
    assert machine_of_busybox(tmp_path / "t.tar") == machine


def test_a_platform_the_image_lacks_is_a_clear_error(tmp_path):
    proc = subprocess.run(smith_cmd("minimize", "--output", str(tmp_path / "t.tar"), "--platform",
                                    "linux/riscv64", busybox_index()),
                          env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("smith minimize: error: ") and "no linux/riscv64 image in the index; " \
        "it offers linux/amd64, linux/arm64/v8" in proc.stderr, proc.stderr
    assert not (tmp_path / "t.tar").exists()
