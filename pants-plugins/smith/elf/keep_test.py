"""`--keep`: data files and whole directories kept as they are, next to a program's closure."""
import os
import shutil

import pytest

from smith.elf.closure import compute_closure
from smith.errors import SmithError


def _root(tmp_path):
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc/app/conf.d").mkdir(parents=True)
    (root / "etc/app/main.conf").write_text("a\n")
    (root / "etc/app/conf.d/extra.conf").write_text("b\n")
    os.symlink("main.conf", root / "etc/app/link.conf")
    (root / "etc/other").write_text("not kept\n")
    return root


def _static_root(tmp_path):
    root = _root(tmp_path)
    # A static program needs only itself, so the test is about --keep alone.
    static = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
    if static is None:
        pytest.skip("busybox-static not installed")
    shutil.copy(static, root / "usr/bin/prog")
    return root


def test_keep_takes_a_directory_whole_and_follows_nothing_else(tmp_path):
    from smith.testutil.debian import require_tools
    require_tools("busybox")
    root = _static_root(tmp_path)
    paths = compute_closure(str(root), ["/usr/bin/prog"], keep=["/etc/app"]).paths
    assert "/etc/app/main.conf" in paths
    assert "/etc/app/conf.d/extra.conf" in paths
    assert "/etc/app/link.conf" in paths
    assert "/etc/other" not in paths


def test_keep_glob_that_matches_nothing_is_an_error(tmp_path):
    from smith.testutil.debian import require_tools
    require_tools("busybox")
    root = _static_root(tmp_path)
    with pytest.raises(SmithError, match="--keep /etc/nothing\\* matched nothing"):
        compute_closure(str(root), ["/usr/bin/prog"], keep=["/etc/nothing*"])
