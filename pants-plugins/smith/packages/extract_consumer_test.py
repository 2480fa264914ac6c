"""Our readers against the real tools: every file `dpkg-deb -x` unpacks, and every file
`rpm -qp` lists (with its digest), is in our tree tar with the same content, mode and link
target (at its merged-/usr place)."""
import glob
import hashlib
import os
import stat
import subprocess
import tarfile

from smith.packages import extract_cli
from smith.testutil import fixture_repos
from smith.packages.tree import MERGED
from smith.testutil.debian import require_tools, tool_env


def usr(path):
    return "usr/" + path if path.split("/", 1)[0] in MERGED else path


def tree_of(tmp_path, package_file):
    with open(package_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    out = tmp_path / (os.path.basename(package_file) + ".tar")
    assert extract_cli.main(["--output", str(out), "--sha256", digest, package_file]) == 0
    with tarfile.open(out) as t:
        return {m.name: (m, t.extractfile(m).read() if m.isfile() else None) for m in t}


def assert_matches_dpkg_deb(tmp_path, deb, ours):
    """Every file and symlink `dpkg-deb -x` unpacks is in OURS (tree_of) at its merged-/usr
    place, with the same bytes, mode or link meaning, and nothing else is."""
    unpacked = tmp_path / (os.path.basename(deb) + ".dir")
    subprocess.run(["dpkg-deb", "-x", deb, str(unpacked)], env=tool_env(), check=True)
    theirs = 0
    for dirpath, dirnames, filenames in os.walk(unpacked):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, unpacked)
            member, data = ours[usr(rel)]
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full)
                assert member.issym(), rel
                if target.startswith("/"):
                    assert member.linkname == target, rel
                else:   # same meaning: both resolve to the same merged-/usr path
                    here = os.path.dirname(usr(rel))
                    assert os.path.normpath(os.path.join(here, member.linkname)) == usr(
                        os.path.normpath(os.path.join(os.path.dirname(rel), target))), rel
            else:
                with open(full, "rb") as f:
                    assert data == f.read(), rel
                assert member.mode == stat.S_IMODE(st.st_mode), rel
            theirs += 1
    assert theirs == sum(1 for m, _ in ours.values() if not m.isdir() and m.name not in MERGED)


def test_deb_trees_match_dpkg_deb(tmp_path):
    require_tools("dpkg-deb")
    debs = sorted(glob.glob(os.path.join(fixture_repos.deb_repo(), "repo/pool/main/*.deb")))
    assert len(debs) == len(fixture_repos.DEB_PACKAGES)
    for deb in debs:
        assert_matches_dpkg_deb(tmp_path, deb, tree_of(tmp_path, deb))


def test_rpm_trees_match_rpm_query(tmp_path):
    require_tools("rpm")
    rpms = sorted(glob.glob(os.path.join(fixture_repos.rpm_repo(), "repo/Packages/*.rpm")))
    assert len(rpms) == len(fixture_repos.RPM_PACKAGES)
    for rpm in rpms:
        ours = tree_of(tmp_path, rpm)
        listing = subprocess.run(["rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEMODES:octal} %{FILEDIGESTS}\n]",
                                  rpm], env=tool_env(), stdout=subprocess.PIPE, text=True, check=True).stdout
        files = [line.split() for line in listing.splitlines() if line.strip()]
        for path, mode, digest in files:
            member, data = ours[usr(path.lstrip("/"))]
            assert member.mode == int(mode, 8) & 0o7777
            assert hashlib.sha256(data).hexdigest() == digest
        assert len(files) == sum(1 for m, _ in ours.values() if m.isfile())
