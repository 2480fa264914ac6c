import os
import subprocess
import tarfile

import pytest

from smith.errors import SmithError
from smith.oci import merge_cli
from smith.testutil.debian import tool_env


def gnu_tar(src, dest, *names):
    subprocess.run(["tar", "-cf", str(dest), "-C", str(src), *names], env=tool_env(), check=True)


def test_merge_dedupes_keeps_modes_and_is_deterministic(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        (root / "usr" / "lib").mkdir(parents=True)
        (root / "usr" / "lib" / "shared.so").write_bytes(b"same bytes")
        os.chmod(root / "usr" / "lib" / "shared.so", 0o755)
    (one / "usr" / "bin").mkdir()
    (one / "usr" / "bin" / "prog").write_bytes(b"prog")
    os.chmod(one / "usr" / "bin" / "prog", 0o4750)  # modes kept as they are in tree tars
    os.link(one / "usr" / "bin" / "prog", one / "usr" / "bin" / "prog2")
    (two / "etc").mkdir()
    os.symlink("../usr/lib/shared.so", two / "etc" / "link")
    os.chmod(one / "usr" / "lib", 0o750)  # dir modes differ: merged to their union
    os.chmod(two / "usr" / "lib", 0o705)
    gnu_tar(one, tmp_path / "one.tar", "usr")
    gnu_tar(two, tmp_path / "two.tar", "usr", "etc")
    os.utime(tmp_path / "two.tar", (5, 5))
    merge_cli.merge_tree_tars([str(tmp_path / "one.tar"), str(tmp_path / "two.tar")],
                              str(tmp_path / "m1.tar"))
    assert merge_cli.main(["--output", str(tmp_path / "m2.tar"),
                           str(tmp_path / "two.tar"), str(tmp_path / "one.tar")]) == 0
    assert (tmp_path / "m1.tar").read_bytes() == (tmp_path / "m2.tar").read_bytes()
    listing = subprocess.run(["tar", "--numeric-owner", "-tvf", str(tmp_path / "m1.tar")],
                             env=tool_env(), stdout=subprocess.PIPE, check=True,
                             text=True).stdout.splitlines()
    assert all(" 0/0 " in l and " 1970-01-01 00:00 " in l for l in listing), listing
    with tarfile.open(tmp_path / "m1.tar") as tf:
        m = {x.name: x for x in tf}
    assert sorted(m) == ["etc", "etc/link", "usr", "usr/bin", "usr/bin/prog", "usr/bin/prog2",
                         "usr/lib", "usr/lib/shared.so"]
    assert m["usr/bin/prog"].mode == 0o4750 and m["usr/bin/prog"].isreg()
    assert m["usr/bin/prog2"].islnk() and m["usr/bin/prog2"].linkname == "usr/bin/prog"
    assert m["usr/lib/shared.so"].mode == 0o755
    assert m["usr/lib"].mode == 0o755


def test_merge_conflict_names_path_and_both_sources(tmp_path):
    for name, data in (("a", b"one"), ("b", b"two")):
        (tmp_path / name / "etc").mkdir(parents=True)
        (tmp_path / name / "etc" / "conf").write_bytes(data)
        gnu_tar(tmp_path / name, tmp_path / (name + ".tar"), "etc")
    out = tmp_path / "m.tar"
    with pytest.raises(SmithError, match=r"/etc/conf differs between .*a\.tar .* and .*b\.tar"):
        merge_cli.main(["--output", str(out), str(tmp_path / "a.tar"), str(tmp_path / "b.tar")])
    assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".m.tar")] == []
