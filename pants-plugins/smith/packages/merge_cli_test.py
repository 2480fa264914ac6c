"""`smith merge-packages`: package trees merged, or a conflict that names both packages."""
import io
import tarfile

import pytest

from smith.errors import SmithError
from smith.packages.merge_cli import main


def _tree(path, files):
    with tarfile.open(path, "w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return str(path)


def test_merges_package_trees(tmp_path):
    a = _tree(tmp_path / "a.tar", {"usr/bin/a": b"a"})
    b = _tree(tmp_path / "b.tar", {"usr/bin/b": b"b"})
    out = tmp_path / "out.tar"
    assert main(["--output", str(out), "pa=" + a, "pb=" + b]) == 0
    with tarfile.open(out) as t:
        assert {"usr/bin/a", "usr/bin/b"} <= set(t.getnames())


def test_conflict_names_both_packages_and_writes_nothing(tmp_path):
    a = _tree(tmp_path / "a.tar", {"etc/x": b"one"})
    b = _tree(tmp_path / "b.tar", {"etc/x": b"two"})
    out = tmp_path / "out.tar"
    with pytest.raises(SmithError, match="packages pa and pb both ship /etc/x"):
        main(["--output", str(out), "pa=" + a, "pb=" + b])
    assert not out.exists()
