"""The closure refuses to mix ELF machines (a clear error naming both files), follows the
image's platform when one is given, and traces an arm64 program without running anything."""
import os
import shutil

import pytest

from smith.elf.closure import compute_closure
from smith.errors import SmithError

HELLO = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "hello")
AMD64 = os.path.join(HELLO, "bin", "hello")
ARM64 = os.path.join(HELLO, "arm64", "bin", "hello")


def root_with(tmp_path, files):
    for path, src in files.items():
        dst = tmp_path / path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        os.chmod(dst, 0o755)
    return str(tmp_path)


def test_programs_of_two_machines_are_refused_naming_both(tmp_path):
    root = root_with(tmp_path, {"/bin/a": AMD64, "/bin/b": ARM64})
    with pytest.raises(SmithError, match=r"/bin/b is EM_AARCH64 \(ELFCLASS64\) but /bin/a is EM_X86_64"):
        compute_closure(root, ["/bin/a", "/bin/b"])


def test_the_platform_decides_the_machine(tmp_path):
    root = root_with(tmp_path, {"/bin/a": AMD64, "/bin/b": ARM64})
    assert compute_closure(root, ["/bin/b"], platform="linux/arm64").paths == ["/bin/b"]
    with pytest.raises(SmithError, match="/bin/a is EM_X86_64 .* the image's platform linux/arm64 is EM_AARCH64"):
        compute_closure(root, ["/bin/a"], platform="linux/arm64")


def test_an_interpreter_of_another_machine_is_refused(tmp_path):
    # A dynamic x86-64 program whose ld.so in the root is an AArch64 file.
    true = shutil.which("true")
    root = root_with(tmp_path, {"/bin/true": true, "/lib64/ld-linux-x86-64.so.2": ARM64})
    with pytest.raises(SmithError, match="/lib64/ld-linux-x86-64.so.2 is EM_AARCH64 .* but /bin/true is EM_X86_64"):
        compute_closure(root, ["/bin/true"])


def test_extra_libs_of_another_machine_are_refused(tmp_path):
    root = root_with(tmp_path, {"/bin/b": ARM64, "/usr/lib/plugin.so": AMD64})
    with pytest.raises(SmithError, match="/usr/lib/plugin.so is EM_X86_64"):
        compute_closure(root, ["/bin/b"], extra_libs=["/usr/lib/plugin.so"])
