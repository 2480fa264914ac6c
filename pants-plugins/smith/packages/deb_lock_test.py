"""deb end to end against a local signed repository built by the test (dpkg-deb,
dpkg-scanpackages, apt-ftparchive, gpg) and served by http.server on 127.0.0.1."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

import smith
from smith.errors import SmithError
from smith.packages import deb_repo, extract_cli, lock_cli
from smith.testutil import fixture_repos, hostile_json
from smith.testutil.debian import tool_env


@pytest.fixture(scope="module")
def repo():
    root = fixture_repos.deb_repo()
    with fixture_repos.serve(os.path.join(root, "repo")) as url:
        yield root, url


def repo_json(tmp_path, url, **fields):
    raw = {"kind": "deb", "url": url, "suites": ["stable"], "components": ["main"],
           "architectures": ["amd64"]}
    raw.update(fields)
    path = tmp_path / "repo.json"
    path.write_text(json.dumps(raw))
    return str(path)


def lock(tmp_path, root, url, *args, **fields):
    fields.setdefault("keyring", os.path.join(root, "keyring.gpg"))
    out = tmp_path / "lock.json"
    assert lock_cli.main(["--repo", repo_json(tmp_path, url, **fields), "--output", str(out)]
                         + list(args)) == 0
    return json.loads(out.read_text())


def by_name(lockdata):
    return {p["name"]: p for p in lockdata["packages"]}


def test_lock_extract_and_run(tmp_path, repo):
    root, url = repo
    data = lock(tmp_path, root, url, "hello")
    pkgs = by_name(data)
    # Version relation picks libgreet1 1.1 over 0.9; the unknown alternative falls back to
    # hello-data; the virtual default-greeting goes to the provider with the better Priority.
    assert sorted(pkgs) == ["greeting-en", "hello", "hello-data", "libgreet1"]
    assert pkgs["libgreet1"]["version"] == "1.1-1"
    assert pkgs["hello"]["depends"] == ["greeting-en", "hello-data", "libgreet1"]
    assert data["request"] == {"packages": ["hello"], "exclude": []}
    assert data["repository"]["url"] == url
    # Extract every locked package exactly as a build does: download, check, extract (one step).
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    downloads = tmp_path / "downloads"
    for p in data["packages"]:
        tree = tmp_path / (p["name"] + ".tar")
        assert extract_cli.main(["--output", str(tree), "--sha256", p["sha256"], "--size",
                                 str(p["size"]), "--name", p["name"], "--url", p["url"],
                                 "--cache-dir", str(downloads)]) == 0
        # The download is kept under its sha256 and gives the same tree as the file itself.
        cached = downloads / p["sha256"]
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == p["sha256"]
        from_file = tmp_path / (p["name"] + ".from-file.tar")
        assert extract_cli.main(["--output", str(from_file), "--sha256", p["sha256"], "--name",
                                 p["name"], str(cached)]) == 0
        assert from_file.read_bytes() == tree.read_bytes()
        with tarfile.open(tree) as t:
            members = t.getmembers()
            assert [m.name for m in members] == sorted(m.name for m in members)
            assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
            t.extractall(rootfs)
    # Merged /usr: /bin/hello landed in usr/bin with the bin -> usr/bin link beside it, and
    # the relative ../bin/hello link from /sbin still reaches it.
    assert os.readlink(rootfs / "bin") == "usr/bin"
    assert os.readlink(rootfs / "usr/sbin/hello-admin") in ("../bin/hello",)
    assert (rootfs / "sbin/hello-admin").resolve() == (rootfs / "usr/bin/hello").resolve()
    assert (rootfs / "usr/share/hello/greeting").read_text() == "hello\n"
    assert os.stat(rootfs / "usr/bin/hello").st_mode & 0o777 == 0o755
    # The ELF files are real: the binary runs against the locked library version.
    out = subprocess.run([str(rootfs / "usr/bin/hi")], env=tool_env(
        LD_LIBRARY_PATH=str(rootfs / "lib/x86_64-linux-gnu")), stdout=subprocess.PIPE, check=True)
    assert out.stdout == b"hello from libgreet 1.1\n"


def test_lock_cli_is_deterministic_and_versioned_request(tmp_path, repo):
    root, url = repo
    repo_file = repo_json(tmp_path, url, keyring=os.path.join(root, "keyring.gpg"))
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    outputs = []
    for i in range(2):
        out = tmp_path / ("lock%d.json" % i)
        proc = subprocess.run([sys.executable, "-m", "smith", "lock", "--repo", repo_file, "--output",
                               str(out), "hello", "libgreet1 (<< 1.0)"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.returncode == 1, proc.stderr
        assert b"libgreet1" in proc.stderr and not out.exists()
        proc = subprocess.run([sys.executable, "-m", "smith", "lock", "--repo", repo_file, "--output",
                               str(out), "libgreet1 (<< 1.0)"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["packages"][0]["version"] == "0.9-1"
    assert outputs[0].decode() == json.dumps(json.loads(outputs[0]), sort_keys=True, indent=2) + "\n"
    proc = subprocess.run([sys.executable, "-m", "smith", "lock", "--repo", repo_file, "--output",
                           str(tmp_path / "x.json"), "--no-such-option", "hello"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 2 and b"unrecognized arguments" in proc.stderr


def test_file_url_and_metadata_cache(tmp_path, repo):
    root, _ = repo
    url = "file://" + os.path.join(root, "repo")
    cache = tmp_path / "cache"
    data = lock(tmp_path, root, url, "hello", "--cache-dir", str(cache))
    assert by_name(data)["hello"]["url"] == url + "/pool/main/hello_2.0-1_amd64.deb"
    with open(os.path.join(root, "repo/dists/stable/main/binary-amd64/Packages.xz"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    # The verified index and its parsed records are kept by the index's sha256 ...
    assert sorted(os.listdir(cache)) == [digest, digest + ".records.json"]
    # ... and a second lock from the cache gives the same bytes.
    first = (tmp_path / "lock.json").read_bytes()
    assert lock(tmp_path, root, url, "hello", "--cache-dir", str(cache)) == json.loads(first)


_BOGUS = {"Package": "hello", "Version": "9.9-1", "Architecture": "amd64", "Filename": "pool/evil.deb",
          "SHA256": "0" * 64, "Size": "1"}


@pytest.mark.parametrize("damaged", [
    b'{"Package": "hello"}',
    b"[7]",
    json.dumps([dict(_BOGUS, Size=1)]).encode(),
    hostile_json.deeply_nested(),
    hostile_json.padded([_BOGUS], 4096),
    hostile_json.NOT_JSON,
], ids=["top-level-object", "record-an-int", "size-a-number", "deep", "oversized", "not-json"])
def test_a_damaged_metadata_cache_entry_is_rebuilt_from_the_verified_index(tmp_path, repo, monkeypatch, damaged):
    root, _ = repo
    url = "file://" + os.path.join(root, "repo")
    cache = tmp_path / "cache"
    first = lock(tmp_path, root, url, "hello", "--cache-dir", str(cache))
    [records] = [p for p in cache.iterdir() if p.name.endswith(".records.json")]
    good = records.read_bytes()
    # The cache is the user's, not verified: whatever is in it never makes a lock or a traceback.
    monkeypatch.setattr(deb_repo, "MAX_RECORDS_BYTES", 4096)
    records.write_bytes(damaged)
    assert lock(tmp_path, root, url, "hello", "--cache-dir", str(cache)) == first
    assert records.read_bytes() == good


def test_cycle_resolves(tmp_path, repo):
    pkgs = by_name(lock(tmp_path, *repo, "cycle-a"))
    assert pkgs["cycle-a"]["depends"] == ["cycle-b"]
    assert pkgs["cycle-b"]["depends"] == ["cycle-a"]


def test_missing_dependency_shows_chain(tmp_path, repo):
    with pytest.raises(SmithError) as e:
        lock(tmp_path, *repo, "top")
    assert "requested -> top 1.0 (all) -> middle 1.0 (all) -> needs libmissing (>= 2)" in str(e.value)
    assert not (tmp_path / "lock.json").exists()
    with pytest.raises(SmithError, match=r"needs libgreet1 \(>= 5\): the repository has only "
                                         r"libgreet1 1.1-1, libgreet1 0.9-1"):
        lock(tmp_path, *repo, "libgreet1 (>= 5)")


def test_conflicts_error_and_backtracking(tmp_path, repo):
    with pytest.raises(SmithError, match="conflicts with conf-b"):
        lock(tmp_path, *repo, "wants-both")
    # picky: `conf-a | conf-c, conf-b` -> conf-a is tried first, conflicts with conf-b, and
    # the solver backs up to conf-c.
    assert sorted(by_name(lock(tmp_path, *repo, "picky"))) == ["conf-b", "conf-c", "picky"]


def test_exclude(tmp_path, repo):
    data = lock(tmp_path, *repo, "hello", "--exclude", "hello-data", "--exclude", "greeting-en")
    pkgs = by_name(data)
    # The excluded provider gives way to the other one; the alternative met only by an
    # excluded package is skipped and recorded.
    assert sorted(pkgs) == ["greeting-fr", "hello", "libgreet1"]
    assert data["excluded"] == {"hello-data": ["hello"]}
    assert data["request"]["exclude"] == ["greeting-en", "hello-data"]
    with pytest.raises(SmithError, match="both requested and excluded"):
        lock(tmp_path, *repo, "hello", "--exclude", "hello")


def test_bad_signature(tmp_path, repo):
    root, url = repo
    with pytest.raises(SmithError, match="signature of .*InRelease does not verify"):
        lock(tmp_path, root, url, "hello", keyring=os.path.join(root, "other-keyring.gpg"))
    # Trusted (apt's [trusted=yes]) skips the check.
    assert "hello" in by_name(lock(tmp_path, root, url, "hello", keyring=None, trusted=True))


def test_tampered_index_and_missing_suite(tmp_path, repo):
    root, _ = repo
    copy = tmp_path / "copy"
    shutil.copytree(os.path.join(root, "repo"), copy)
    index = copy / "dists/stable/main/binary-amd64/Packages.xz"
    index.write_bytes(index.read_bytes()[:-8])
    with fixture_repos.serve(str(copy)) as url:
        with pytest.raises(SmithError, match="Packages.xz has .* bytes but .* were expected"):
            lock(tmp_path, root, url, "hello")
        with pytest.raises(SmithError, match="dists/nosuch/InRelease failed: HTTP 404"):
            lock(tmp_path, root, url, "hello", suites=["nosuch"])


def test_extract_rejects_bad_files(tmp_path, repo):
    root, _ = repo
    deb = os.path.join(root, "repo/pool/main/hello_2.0-1_amd64.deb")
    with open(deb, "rb") as f:
        blob = f.read()
    out = tmp_path / "tree.tar"
    good = hashlib.sha256(blob).hexdigest()
    with pytest.raises(SmithError, match="has sha256 .* but 0{64} was expected"):
        extract_cli.main(["--output", str(out), "--sha256", "0" * 64, deb])
    truncated = tmp_path / "truncated.deb"
    truncated.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(SmithError, match="bytes but %d were expected" % len(blob)):
        extract_cli.main(["--output", str(out), "--sha256", good, "--size", str(len(blob)), str(truncated)])
    # Even with a matching checksum a truncated archive is a clear error, not a traceback.
    with pytest.raises(SmithError, match="truncated"):
        extract_cli.main(["--output", str(out), "--sha256",
                          hashlib.sha256(truncated.read_bytes()).hexdigest(), str(truncated)])
    assert sorted(os.listdir(tmp_path)) == ["truncated.deb"]   # nothing half-written
    # Downloading: a wrong pin names the URL, and nothing is cached or written.
    url = repo[1] + "/pool/main/hello_2.0-1_amd64.deb"
    cache = tmp_path / "downloads"
    with pytest.raises(SmithError, match="hello_2.0-1_amd64.deb has sha256 .* but 0{64} was expected"):
        extract_cli.main(["--output", str(out), "--sha256", "0" * 64, "--url", url, "--cache-dir", str(cache)])
    with pytest.raises(SmithError, match="fetching .*/gone.deb failed: HTTP 404"):
        extract_cli.main(["--output", str(out), "--sha256", good, "--url", repo[1] + "/gone.deb"])
    assert sorted(os.listdir(tmp_path)) == ["truncated.deb"]
    with pytest.raises(SystemExit):  # a file and --url at once is a usage error
        extract_cli.main(["--output", str(out), "--sha256", good, "--url", url, deb])
