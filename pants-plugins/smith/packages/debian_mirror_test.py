"""A few tests against the real Debian mirror (bookworm, main, amd64). Verified metadata is
cached by sha256 under /tmp/smith-test-cache/debian-meta, so only the first run downloads
the ~9 MB Packages.xz (and again whenever the Release file lists a new one)."""
import hashlib
import json
import os
import re
import subprocess
import tarfile
import urllib.request

import pytest

from smith.packages import extract_cli, lock_cli
from smith.packages.extract_consumer_test import assert_matches_dpkg_deb, tree_of
from smith.testutil.debian import tool_env

MIRROR = "http://deb.debian.org/debian"
SUITES = ["bookworm", "bookworm-updates"]
CACHE = "/tmp/smith-test-cache/debian-meta"

pytestmark = pytest.mark.debian_mirror


@pytest.fixture(scope="module")
def redis_lock(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mirror")
    repo = tmp / "repo.json"
    repo.write_text(json.dumps({"kind": "deb", "url": MIRROR, "suites": SUITES,
                                "components": ["main"], "architectures": ["amd64"]}))
    out = tmp / "redis.lock.json"
    assert lock_cli.main(["--repo", str(repo), "--output", str(out), "--cache-dir", CACHE,
                          "redis-server"]) == 0
    return json.loads(out.read_text())


def apt_simulate(tmp, package):
    """What apt installs on an empty system from the same suites (no Recommends)."""
    root = tmp / "apt"
    for d in ("cache/archives/partial", "etc/preferences.d", "etc/apt.conf.d"):
        (root / d).mkdir(parents=True)
    # apt's lists are kept between runs: `apt-get update` then fetches only what changed.
    lists = os.path.join(os.path.dirname(CACHE), "apt-bookworm-lists")
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    (root / "status").write_text("")
    (root / "etc/sources.list").write_text("".join(
        "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n"
        % (MIRROR, s) for s in SUITES))
    opts = ["-o", "Dir::Etc::SourceList=%s/etc/sources.list" % root,
            "-o", "Dir::Etc::SourceParts=%s/etc/apt.conf.d" % root,
            "-o", "Dir::Etc::Parts=%s/etc/apt.conf.d" % root,
            "-o", "Dir::Etc::PreferencesParts=%s/etc/preferences.d" % root,
            "-o", "Dir::State::Lists=%s" % lists, "-o", "Dir::State::status=%s/status" % root,
            "-o", "Dir::Cache=%s/cache" % root, "-o", "APT::Install-Recommends=false",
            "-o", "Acquire::Languages=none", "-o", "Debug::NoLocking=1",
            "-o", "APT::Architecture=amd64", "-o", "APT::Architectures=amd64"]
    env = tool_env(DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "-q", *opts, "update"], env=env, check=True, stdout=subprocess.PIPE)
    out = subprocess.run(["apt-get", *opts, "--simulate", "install", package], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return dict(re.findall(r"^Inst (\S+) \((\S+) ", out, re.M))


def test_redis_lock_agrees_with_apt(redis_lock, tmp_path):
    locked = {p["name"]: p["version"] for p in redis_lock["packages"]}
    assert {"redis-server", "libc6", "libssl3"} <= set(locked)
    assert locked == apt_simulate(tmp_path, "redis-server")
    for p in redis_lock["packages"]:
        assert re.fullmatch("[0-9a-f]{64}", p["sha256"]) and p["size"] > 0
        assert p["url"].startswith(MIRROR + "/pool/main/")


def test_extract_libc6_and_redis(redis_lock, tmp_path):
    pkgs = {p["name"]: p for p in redis_lock["packages"]}
    members = {}
    for name in ("libc6", "redis-tools"):
        p = pkgs[name]
        deb = tmp_path / (name + ".deb")
        deb.write_bytes(urllib.request.urlopen(p["url"]).read())
        assert hashlib.sha256(deb.read_bytes()).hexdigest() == p["sha256"]
        tree = tmp_path / (name + ".tar")
        extract_cli.main(["--output", str(tree), "--sha256", p["sha256"], "--size", str(p["size"]),
                          "--name", name, str(deb)])
        with tarfile.open(tree) as t:
            members[name] = {m.name: m for m in t.getmembers()}
    libc = members["libc6"]
    # Merged /usr: the loader path baked into every amd64 binary resolves in libc6's tree.
    assert libc["lib64"].linkname == "usr/lib64" and libc["lib"].linkname == "usr/lib"
    assert libc["usr/lib64/ld-linux-x86-64.so.2"].issym()
    assert libc["usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"].isfile()
    assert "usr/lib/x86_64-linux-gnu/libc.so.6" in libc
    assert members["redis-tools"]["usr/bin/redis-check-rdb"].size > 100000
    # And the whole of libc6 is what dpkg itself unpacks (at merged-/usr places).
    deb = str(tmp_path / "libc6.deb")
    assert_matches_dpkg_deb(tmp_path, deb, tree_of(tmp_path, deb))
