"""rpm end to end: rpms built by rpmbuild in the test (real ELF files, Requires across
packages, a file dependency, a versioned one, a rich `or`), createrepo_c, served on
127.0.0.1 -> lock -> extract; dnf on the same repository picks the same package set."""
import hashlib
import json
import os
import re
import subprocess
import tarfile
import urllib.request

import pytest

from smith.errors import SmithError
from smith.packages import extract_cli, lock_cli
from smith.testutil import fixture_repos
from smith.packages.rpmvercmp import evr_compare
from smith.testutil.debian import require_tools, tool_env


@pytest.fixture(scope="module")
def repo():
    root = fixture_repos.rpm_repo()
    with fixture_repos.serve(os.path.join(root, "repo")) as url:
        yield root, url


def lock(tmp_path, url, *args):
    repo_file = tmp_path / "repo.json"
    repo_file.write_text(json.dumps({"kind": "rpm", "url": url, "architectures": ["x86_64", "noarch"]}))
    out = tmp_path / "lock.json"
    assert lock_cli.main(["--repo", str(repo_file), "--output", str(out)] + list(args)) == 0
    return json.loads(out.read_text())


def dnf_picks(tmp_path, url, package):
    require_tools("dnf")
    root = tmp_path / "dnfroot"
    root.mkdir()
    proc = subprocess.run(["dnf", "--installroot", str(root), "--releasever=1", "--disablerepo=*",
                           "--repofrompath=t," + url, "--enablerepo=t", "--setopt=t.gpgcheck=0",
                           "--assumeno", "install", package], env=tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "Operation aborted" in proc.stdout, proc.stdout
    table = proc.stdout.split("Installing:", 1)[1].split("Transaction Summary", 1)[0]
    rows = [line.split() for line in table.splitlines() if re.match(r"^ \S+\s+\S+\s+\S+\s+t\s", line)]
    return {row[0]: row[2] for row in rows}


def test_lock_matches_dnf_and_extracts(tmp_path, repo):
    root, url = repo
    data = lock(tmp_path, url, "rhello")
    pkgs = {p["name"]: p for p in data["packages"]}
    assert {n: p["version"] for n, p in pkgs.items()} == dnf_picks(tmp_path, url, "rhello")
    assert pkgs["librgreet"]["version"] == "1.2-1"                 # versioned Requires
    assert pkgs["rhello"]["depends"] == ["librgreet", "rgreet-en", "rhelper"]  # file + rich deps
    assert pkgs["rhelper"]["architecture"] == "noarch"
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for p in data["packages"]:
        rpm = tmp_path / (p["name"] + ".rpm")
        rpm.write_bytes(urllib.request.urlopen(p["url"]).read())
        tree = tmp_path / (p["name"] + ".tar")
        assert extract_cli.main(["--output", str(tree), "--sha256", p["sha256"], "--size",
                                 str(p["size"]), "--name", p["name"], str(rpm)]) == 0
        with tarfile.open(tree) as t:
            names = t.getnames()
            assert names == sorted(names)
            t.extractall(rootfs)
    assert os.stat(rootfs / "usr/bin/rhelper").st_mode & 0o777 == 0o755
    assert (rootfs / "usr/share/rhello/greeting").read_text() == "hello\n"
    # gzip (librgreet), xz (rhelper) and zstd (rhello) payloads all gave real, working files.
    out = subprocess.run([str(rootfs / "usr/bin/rhello")], stdout=subprocess.PIPE, check=True,
                         env=tool_env(LD_LIBRARY_PATH=str(rootfs / "usr/lib64")))
    assert out.stdout == b"hello from libgreet 1.1\n"


def test_versioned_request_and_unsupported_rich_dependency(tmp_path, repo):
    _, url = repo
    assert [p["version"] for p in lock(tmp_path, url, "librgreet < 1.0")["packages"]] == ["0.9-1"]
    with pytest.raises(SmithError, match=r"rneeds-rich 1.0-1 \(noarch\) -> needs \(rgreet-en if rhello\): this rich dependency is not supported"):
        lock(tmp_path, url, "rneeds-rich")
    with pytest.raises(SmithError, match="needs nosuch: no package in the repository provides it"):
        lock(tmp_path, url, "nosuch")


def test_extract_rejects_truncated_rpm(tmp_path, repo):
    root, _ = repo
    with open(os.path.join(root, "repo/Packages/rhello-2.0-1.x86_64.rpm"), "rb") as f:
        blob = f.read()
    bad = tmp_path / "cut.rpm"
    bad.write_bytes(blob[:len(blob) - 100])
    with pytest.raises(SmithError, match="truncated or corrupt"):
        extract_cli.main(["--output", str(tmp_path / "t.tar"), "--sha256",
                          hashlib.sha256(bad.read_bytes()).hexdigest(), str(bad)])
    assert not (tmp_path / "t.tar").exists()


def test_rpmvercmp_agrees_with_rpm():
    require_tools("rpm")
    pairs = [("1.0", "1.0"), ("1.0", "1.0a"), ("1.0~rc1", "1.0"), ("1.0^git1", "1.0"),
             ("1.0^git1", "1.0.1"), ("2.0", "10"), ("1.05", "1.5"), ("a", "1"), ("1.0-2", "1.0-10"),
             ("1:1.0-1", "2.0-1"), ("1.0.el9", "1.0.el10"), ("1_0", "1.0"), ("r", "R"),
             ("1.0~~", "1.0~"), ("0:1.0-1", "1.0-1"), ("5.3.28+dfsg", "5.3.28")]
    script = "".join('print(rpm.vercmp("%s", "%s")) ' % pair for pair in pairs)
    out = subprocess.run(["rpm", "--eval", "%%{lua: %s}" % script], env=tool_env(),
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    expected = [int(x) for x in re.findall(r"-?\d", out)]
    assert [evr_compare(a, b) for a, b in pairs] == expected
