"""Locking several architectures into one lockfile: each solved on its own packages and the
shared `Architecture: all` ones, pins read back per architecture."""
import dataclasses

import pytest

from smith.errors import SmithError
from smith.packages import lockfile
from smith.packages.deb_repo import DebUniverse
from smith.packages.lock_cli import solve_each_architecture
from smith.packages.metadata import parse_request
from smith.packages.repo_config import from_dict

# name, version, arch, depends
RECORDS = [
    ("app", "1.0", "amd64", "libc6 (>= 2.36), app-data"),
    ("app", "1.0", "arm64", "libc6 (>= 2.36), app-data"),
    ("app-data", "1.0", "all", ""),
    ("libc6", "2.36-9", "amd64", ""),
    # arm64's libc6 is too old: only an amd64 package could meet `libc6 (>= 2.36)` for arm64.
    ("libc6", "2.31-13", "arm64", ""),
    ("tool", "1.0", "amd64", "libc6"),
    ("tool", "1.0", "arm64", "libc6"),
]


def load(repo, records=RECORDS):
    u = DebUniverse("http://deb.example")
    for name, version, arch, depends in records:
        if arch in repo.architectures or arch == "all":
            u.add(name, {"Package": name, "Version": version, "Architecture": arch,
                         "Filename": "pool/%s_%s_%s.deb" % (name, version, arch),
                         "SHA256": "%064x" % (hash((name, version, arch)) & (2**256 - 1)),
                         "Size": "1", "Depends": depends, "_source": "test"}, [])
    return u


def repo(*arches):
    return from_dict({"kind": "deb", "url": "http://deb.example", "suites": ["s"],
                      "architectures": list(arches), "trusted": True}, "test")


def lock_for(arches, request, records=RECORDS):
    r = repo(*arches)
    reqs = [c for t in request for c in parse_request("deb", t)]
    return lockfile.make_multi(r, request, [], solve_each_architecture(r, reqs, [], lambda x: load(x, records)))


def test_one_architecture_keeps_the_old_format():
    lock = lock_for(["amd64"], ["tool"])
    assert [(p["name"], p["architecture"]) for p in lock["packages"]] == [("libc6", "amd64"), ("tool", "amd64")]
    assert all("used_by" not in p for p in lock["packages"])
    assert [p.name for p in lockfile.pins(lock, "t", architecture="amd64")] == ["libc6", "tool"]


def test_two_architectures_pins_per_architecture_and_shared_all():
    fixed = [r if r[:3] != ("libc6", "2.31-13", "arm64") else ("libc6", "2.36-9", "arm64", "") for r in RECORDS]
    lock = lock_for(["amd64", "arm64"], ["app"], fixed)
    entries = [(p["name"], p["architecture"]) for p in lock["packages"]]
    assert entries == [("app", "amd64"), ("app", "arm64"), ("app-data", "all"),
                       ("libc6", "amd64"), ("libc6", "arm64")]
    assert all("used_by" not in p for p in lock["packages"])  # app-data: used by both
    for arch in ("amd64", "arm64"):
        got = lockfile.pins(lock, "t", architecture=arch)
        assert sorted((p.name, p.architecture) for p in got) == [
            ("app", arch), ("app-data", "all"), ("libc6", arch)]
    # Read back through the canonical text, as a build does.
    again = lockfile.loads(lockfile.dumps(lock).encode(), "t")
    assert lockfile.pins(again, "t", architecture="arm64") == lockfile.pins(lock, "t", architecture="arm64")


def test_an_arm64_dependency_is_never_met_by_an_amd64_package():
    with pytest.raises(SmithError, match=r"architecture arm64: .*libc6 \(>= 2.36\).*libc6 2.31-13"):
        lock_for(["amd64", "arm64"], ["app"])


def test_shared_package_used_by_one_architecture_only():
    records = RECORDS + [("extra", "1.0", "arm64", "app-data"), ("extra", "1.0", "amd64", "")]
    records = [r if r[:3] != ("libc6", "2.31-13", "arm64") else ("libc6", "2.36-9", "arm64", "") for r in records]
    records = [r if r[:3] != ("app", "1.0", "amd64") else ("app", "1.0", "amd64", "libc6") for r in records]
    lock = lock_for(["amd64", "arm64"], ["app", "extra"], records)
    shared = [p for p in lock["packages"] if p["architecture"] == "all"]
    assert shared[0]["used_by"] == ["arm64"]
    assert "app-data" not in [p.name for p in lockfile.pins(lock, "t", architecture="amd64")]
    assert "app-data" in [p.name for p in lockfile.pins(lock, "t", architecture="arm64")]


def test_missing_architecture_names_it_and_says_how_to_fix():
    lock = lock_for(["amd64"], ["tool"])
    with pytest.raises(SmithError, match="has no pins for architecture arm64 .*locked for amd64.*add arm64"):
        lockfile.pins(lock, "lockfile x", "regenerate it", architecture="arm64")


def test_bad_used_by_is_an_error():
    lock = lock_for(["amd64"], ["tool"])
    lock["packages"][0]["used_by"] = "amd64"
    with pytest.raises(SmithError, match="'used_by' must be a list"):
        lockfile.pins(lock, "t", architecture="amd64")


def test_outdated_reports_each_architecture_apart():
    from smith.packages.outdated import check
    fixed = [r if r[:3] != ("libc6", "2.31-13", "arm64") else ("libc6", "2.36-9", "arm64", "") for r in RECORDS]
    lock = lock_for(["amd64", "arm64"], ["tool"], fixed)
    newer = fixed + [("libc6", "2.36-10", "arm64", "")]
    got = check(lock, load(repo("amd64", "arm64"), newer))
    assert [(p.name, p.architecture, p.available) for p in got] == [("libc6", "arm64", "2.36-10")]


def test_sbom_takes_one_architectures_packages():
    from smith.packages.sbom import locked_for
    fixed = [r if r[:3] != ("libc6", "2.31-13", "arm64") else ("libc6", "2.36-9", "arm64", "") for r in RECORDS]
    lock = lock_for(["amd64", "arm64"], ["app"], fixed)
    got = locked_for(lock, "arm64")
    assert {n: p["architecture"] for n, p in got.items()} == {"app": "arm64", "app-data": "all", "libc6": "arm64"}
    with pytest.raises(SmithError, match="locked for amd64, arm64; give --architecture"):
        locked_for(lock, None)
