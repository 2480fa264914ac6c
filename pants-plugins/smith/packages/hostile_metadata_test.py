"""Hostile repository metadata: a `trusted` (unsigned) deb or rpm repository, written by hand in
the test and read over file://, whose Release / Packages / repomd.xml / primary.xml fields that
name files or are read as numbers are malformed. Each is a SmithError naming the repository and
the field (never a traceback, never a file outside the cache or the repository)."""
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys

import pytest

import smith
from smith.errors import SmithError
from smith.packages import extract_cli, lock_cli, lockfile, outdated_cli
from smith.testutil.debian import tool_env

HINT = "the repository's metadata is malformed or hostile"
DEB = {"Package": "hello", "Version": "1.0", "Architecture": "amd64",
       "Filename": "pool/main/hello_1.0_amd64.deb", "SHA256": "ab" * 32, "Size": "1234"}
INDEX = "main/binary-amd64/Packages"


def _paragraph(fields):
    return "".join("%s: %s\n" % kv for kv in fields.items())


def deb_repo(root, record=None, packages=None, release_lines=None, release=None):
    """A trusted deb repository at ROOT with one Packages index; returns its file:// URL."""
    packages = packages if packages is not None else _paragraph(record or DEB).encode()
    index = root / "repo/dists/stable" / INDEX
    index.parent.mkdir(parents=True)
    index.write_bytes(packages)
    if release_lines is None:
        release_lines = [" %s %d %s" % (hashlib.sha256(packages).hexdigest(), len(packages), INDEX)]
    if release is None:
        release = ("Origin: test\nSuite: stable\nSHA256:\n" + "\n".join(release_lines) + "\n").encode()
    (root / "repo/dists/stable/Release").write_bytes(release)
    return "file://%s/repo" % root


def lock(tmp_path, url, kind="deb", *extra):
    repo = {"kind": kind, "url": url, "trusted": True}
    repo.update({"suites": ["stable"]} if kind == "deb" else {"architectures": ["x86_64"]})
    (tmp_path / "repo.json").write_text(json.dumps(repo))
    out = tmp_path / "lock.json"
    assert lock_cli.main(["--repo", str(tmp_path / "repo.json"), "--output", str(out), *extra,
                          "hello"]) == 0
    return json.loads(out.read_text())


def test_a_wellformed_hand_written_repository_locks(tmp_path):
    """The fixture itself is sound: the hostile cases below differ from it in one field."""
    [pin] = lock(tmp_path, deb_repo(tmp_path))["packages"]
    assert (pin["sha256"], pin["size"]) == ("ab" * 32, 1234)
    assert pin["url"] == "file://%s/repo/pool/main/hello_1.0_amd64.deb" % tmp_path


def test_a_release_sha256_never_names_a_file_outside_the_cache(tmp_path):
    """Before: the Release's sha256 `../planted` made the cache path cache/../planted.records.json,
    whose records were taken as the repository's (a read outside the cache)."""
    packages = _paragraph(DEB).encode()
    url = deb_repo(tmp_path, release_lines=[" ../planted %d %s" % (len(packages), INDEX)])
    (tmp_path / "cache").mkdir()
    (tmp_path / "planted.records.json").write_text(json.dumps([dict(DEB, Version="6.6.6")]))
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url, "deb", "--cache-dir", str(tmp_path / "cache"))
    assert str(e.value).startswith("deb repository %s: %s/dists/stable/Release: the SHA256 line of %s: "
                                   "sha256 '../planted' is not a sha256" % (url, url, INDEX)), e.value
    assert HINT in str(e.value)
    assert os.listdir(str(tmp_path / "cache")) == [] and not (tmp_path / "lock.json").exists()


@pytest.mark.parametrize("line, message", [
    (" %s 12abc " + INDEX, "size '12abc' is not a size in bytes"),
    (" %s -12 " + INDEX, "size '-12' is not a size in bytes"),
    (" %s 1_2 " + INDEX, "size '1_2' is not a size in bytes"),
    (" %s 99999999999 " + INDEX, "size 99999999999 is more than the 1073741824 bytes smith accepts"),
    (" " + "ab" * 31 + " 12 " + INDEX, "sha256 '" + "ab" * 31 + "' is not a sha256"),
    (" %s " + INDEX, "the SHA256 line ' %s " + INDEX + "' is not `SHA256 SIZE NAME`"),
], ids=["size-junk", "size-negative", "size-underscore", "size-over-cap", "sha256-short", "two-words"])
def test_a_bad_release_field_is_a_clear_error(tmp_path, line, message):
    packages = _paragraph(DEB).encode()
    digest = hashlib.sha256(packages).hexdigest()
    url = deb_repo(tmp_path, release_lines=[line % digest if "%s" in line else line])
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url)
    expected = message % digest if "%s" in message else message
    assert str(e.value).startswith("deb repository %s: " % url) and expected in str(e.value), e.value


@pytest.mark.parametrize("release, message", [
    (b"Origin: \xff\xfe\nSHA256:\n", "Release is not a Release file"),
    (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\nSHA256:\n", "has no SHA256 checksums"),
], ids=["not-utf8", "clearsigned-without-body"])
def test_a_malformed_release_file_is_a_clear_error(tmp_path, release, message):
    url = deb_repo(tmp_path, release=release)
    with pytest.raises(SmithError, match=message):
        lock(tmp_path, url)


@pytest.mark.parametrize("field, value, message", [
    ("Filename", "../../../etc/passwd", "Filename '../../../etc/passwd' is not a path inside the repository"),
    ("Filename", "/etc/passwd", "Filename '/etc/passwd' is not a path inside the repository"),
    ("Filename", "pool/%2e%2e/%2E%2E/x.deb", "Filename 'pool/%2e%2e/%2E%2E/x.deb' is not a path"),
    ("Filename", "pool/x.deb?../y", "Filename 'pool/x.deb?../y' is not a path"),
    ("Filename", "pool/./x.deb", "Filename 'pool/./x.deb' is not a path"),
    ("SHA256", "../../x", "SHA256 '../../x' is not a sha256"),
    ("Size", "1e3", "Size '1e3' is not a size in bytes"),
    ("Size", "-1", "Size '-1' is not a size in bytes"),
    ("Size", "\u0661\u0662", "Size '\u0661\u0662' is not a size in bytes"),  # int() takes Arabic digits
    ("Size", "99999999999999", "Size 99999999999999 is more than the 68719476736 bytes"),
    ("Version", "", "Version is missing"),
], ids=["dotdot", "absolute", "encoded-dotdot", "query", "dot", "sha256", "size-float", "size-negative",
        "size-arabic-digits", "size-over-cap", "no-version"])
def test_a_bad_packages_field_is_a_clear_error_naming_repository_and_package(tmp_path, field, value, message):
    record = dict(DEB, **{field: value})
    if not value:
        del record[field]
    url = deb_repo(tmp_path, record)
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url)
    assert str(e.value).startswith("deb repository %s: stable main/binary-amd64: package hello "
                                   % url), e.value
    assert message in str(e.value) and HINT in str(e.value), e.value
    assert not (tmp_path / "lock.json").exists()


def test_a_filename_with_escapes_is_shown_escaped(tmp_path):
    url = deb_repo(tmp_path, dict(DEB, Filename="pool/\x1b]2;owned\x07x.deb"))
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url)
    assert "Filename 'pool/\\x1b]2;owned\\x07x.deb' is not a path" in str(e.value)
    assert "\x1b" not in str(e.value)


@pytest.mark.parametrize("packages, message", [
    (_paragraph(DEB).encode().replace(b"1.0", b"1.0\xff"), "Packages is not UTF-8 text"),
    (lzma.compress(_paragraph(DEB).encode() * 2000), "decompresses to more than"),
], ids=["not-utf8", "inflates-past-the-cap"])
def test_a_bad_packages_index_is_a_clear_error(tmp_path, monkeypatch, packages, message):
    monkeypatch.setenv("SMITH_MAX_LAYER_BYTES", str(64 << 10))
    with pytest.raises(SmithError, match=message):
        lock(tmp_path, deb_repo(tmp_path, packages=packages))


def test_smith_lock_prints_the_error_without_a_traceback(tmp_path):
    url = deb_repo(tmp_path, dict(DEB, Size="12abc"))
    (tmp_path / "repo.json").write_text(json.dumps({"kind": "deb", "url": url, "suites": ["stable"],
                                                    "trusted": True}))
    proc = subprocess.run([sys.executable, "-m", "smith", "lock", "--repo", str(tmp_path / "repo.json"),
                           "--output", str(tmp_path / "lock.json"), "hello"], cwd=str(tmp_path),
                          env=tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__))),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("smith lock: error: deb repository %s: " % url), proc.stderr
    assert "Size '12abc' is not a size in bytes" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "lock.json").exists()


# rpm -----------------------------------------------------------------------------------------

RPM = {"checksum": "ab" * 32, "href": "Packages/hello-1.0-1.x86_64.rpm", "size": "1234"}
PRIMARY = """<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm"><name>hello</name><arch>x86_64</arch>
  <version epoch="0" ver="1.0" rel="1"/>
  <checksum type="sha256" pkgid="YES">{checksum}</checksum>
  {size_node}
  {location_node}
  <format><rpm:provides><rpm:entry name="hello" flags="EQ" epoch="0" ver="1.0" rel="1"/></rpm:provides></format>
</package>
</metadata>
"""


def rpm_repo(root, package=None, primary_checksum=None, primary_type="sha256", primary_size=None,
             primary_href="repodata/primary.xml"):
    """A trusted rpm repository at ROOT (repomd.xml + an uncompressed primary.xml); its URL."""
    p = dict(RPM, **(package or {}))
    primary = PRIMARY.format(
        checksum=p["checksum"],
        size_node='<size package="%s"/>' % p["size"] if p["size"] is not None else "",
        location_node='<location href="%s"/>' % p["href"] if p["href"] is not None else "").encode()
    (root / "repo/repodata").mkdir(parents=True)
    (root / "repo/repodata/primary.xml").write_bytes(primary)
    repomd = """<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary">
  <checksum type="%s">%s</checksum><location href="%s"/><size>%s</size>
</data></repomd>
""" % (primary_type, primary_checksum or hashlib.sha256(primary).hexdigest(), primary_href,
       primary_size if primary_size is not None else len(primary))
    (root / "repo/repodata/repomd.xml").write_text(repomd)
    return "file://%s/repo" % root


def test_a_wellformed_hand_written_rpm_repository_locks(tmp_path):
    [pin] = lock(tmp_path, rpm_repo(tmp_path), "rpm")["packages"]
    assert (pin["sha256"], pin["size"]) == ("ab" * 32, 1234)
    assert pin["url"] == "file://%s/repo/Packages/hello-1.0-1.x86_64.rpm" % tmp_path


@pytest.mark.parametrize("kwargs, message", [
    ({"primary_checksum": "../planted"}, "checksum '../planted' is not a sha256"),
    ({"primary_type": "md4"}, "checksum type 'md4' is not one of sha, sha1, sha224, sha256, sha384, sha512"),
    ({"primary_type": "sha1", "primary_checksum": "../x"}, "checksum '../x' is not a sha1 digest"),
    ({"primary_size": "12abc"}, "size '12abc' is not a size in bytes"),
    ({"primary_size": "99999999999"}, "size 99999999999 is more than the 1073741824 bytes"),
    ({"primary_href": "../../etc/passwd"}, "location href '../../etc/passwd' is not a path inside"),
], ids=["sha256-path", "unknown-type", "sha1-path", "size-junk", "size-over-cap", "href-dotdot"])
def test_a_bad_repomd_field_is_a_clear_error(tmp_path, kwargs, message):
    (tmp_path / "cache").mkdir()
    (tmp_path / "planted").write_bytes(b"x")
    url = rpm_repo(tmp_path, **kwargs)
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url, "rpm", "--cache-dir", str(tmp_path / "cache"))
    assert str(e.value).startswith("rpm repository %s: %s/repodata/repomd.xml: the primary metadata: "
                                   % (url, url)), e.value
    assert message in str(e.value) and HINT in str(e.value), e.value
    assert os.listdir(str(tmp_path / "cache")) == []


@pytest.mark.parametrize("package, message", [
    ({"checksum": "../../x"}, "checksum '../../x' is not a sha256"),
    ({"href": "../../../etc/passwd"}, "location href '../../../etc/passwd' is not a path inside"),
    ({"href": "/etc/passwd"}, "location href '/etc/passwd' is not a path inside"),
    ({"href": None}, "location href is missing"),
    ({"size": "1.5"}, "size package '1.5' is not a size in bytes"),
    ({"size": None}, "size package is missing"),
], ids=["checksum-path", "href-dotdot", "href-absolute", "no-location", "size-junk", "no-size"])
def test_a_bad_primary_field_is_a_clear_error_naming_repository_and_package(tmp_path, package, message):
    url = rpm_repo(tmp_path, package)
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url, "rpm")
    assert str(e.value).startswith("rpm repository %s: %s/repodata/primary.xml: package hello 1.0-1: "
                                   % (url, url)), e.value
    assert message in str(e.value) and HINT in str(e.value), e.value


# the lockfile and the download cache ---------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("sha256", "../../planted", "field 'sha256' must be 64 lowercase hexadecimal digits"),
    ("sha256", "AB" * 32, "field 'sha256' must be 64 lowercase hexadecimal digits"),
    ("size", -1, r"field 'size' must be a size in bytes \(0 to 68719476736\)"),
    ("name", "../../x", r"field 'name' '\.\./\.\./x' is not a package name"),
    ("name", "a=b", r"field 'name' 'a=b' is not a package name"),
    ("version", "1\u202e0", r"field 'version' '1\\u202e0' is not a version"),
], ids=["sha256-path", "sha256-uppercase", "size-negative", "name-path", "name-equals",
        "version-bidi"])
def test_a_bad_pin_in_a_lockfile_is_a_clear_error(tmp_path, field, value, message):
    data = lock(tmp_path, deb_repo(tmp_path))
    data["packages"][0][field] = value
    with pytest.raises(SmithError, match="lockfile x: package entry 0: %s; regenerate it" % message):
        lockfile.pins(lockfile.loads(lockfile.dumps(data).encode(), "lockfile x"), "lockfile x")


def test_extract_never_reads_the_cache_outside_it(tmp_path):
    """smith extract --sha256 names the file of the download cache: a path is refused before use."""
    (tmp_path / "cache").mkdir()
    (tmp_path / "planted").write_bytes(b"x")
    with pytest.raises(SmithError, match="the expected sha256 '../planted' is not 64 hexadecimal digits"):
        extract_cli.main(["--output", str(tmp_path / "tree.tar"), "--sha256", "../planted",
                          "--url", "file:///nowhere.deb", "--cache-dir", str(tmp_path / "cache")])
    assert sorted(os.listdir(str(tmp_path))) == ["cache", "planted"]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE repomd [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="&f;"/></repomd>
"""


def test_an_entity_expansion_bomb_in_repomd_is_refused_not_expanded(tmp_path):
    # 80 bytes * 32^5: 2.7 GB once expanded. The expat both interpreters link (>= 2.4) stops
    # it at its amplification limit; the lock must turn that into a clear error, fast.
    rpm_repo(tmp_path)
    (tmp_path / "repo/repodata/repomd.xml").write_text(BILLION_LAUGHS)
    with pytest.raises(SmithError) as e:
        lock(tmp_path, "file://%s/repo" % tmp_path, "rpm")
    assert "repomd.xml is not valid XML" in str(e.value), e.value


# Names and versions are printed escaped -----------------------------------------------------

EVIL = "x\x1b]2;owned\x07"  # an OSC: sets the terminal's title


def _evil_repo(root, version, name="evil", depends="evil"):
    shutil.rmtree(str(root / "repo"), ignore_errors=True)
    return deb_repo(root, packages=(_paragraph(dict(DEB, Depends=depends)) + "\n" + _paragraph(
        dict(DEB, Package=name, Version=version, Filename="pool/x.deb"))).encode())


@pytest.mark.parametrize("version", ["1\x1b[2J", "1.0\u202e", "1 0", "../1", "-1"])
def test_a_version_that_is_not_a_version_is_refused_escaped(tmp_path, version):
    """A version is printed (`smith lock`'s listing, Pants' fetch step) and stored in the
    lockfile: one with a terminal escape or a bidi override reached both as is."""
    with pytest.raises(SmithError) as e:
        lock(tmp_path, _evil_repo(tmp_path, version))
    assert "is not a version" in str(e.value) and HINT in str(e.value), e.value
    assert not any(c in str(e.value) for c in "\x1b\u202e"), e.value
    assert not (tmp_path / "lock.json").exists()


def test_a_hostile_relationship_is_logged_escaped_and_its_name_refused(tmp_path, caplog):
    """python-debian's 'cannot parse package relationship' warning quotes the repository's text:
    escaped. The package it names is then refused for its name, also escaped."""
    with pytest.raises(SmithError) as e:
        lock(tmp_path, _evil_repo(tmp_path, "1.0", name=EVIL, depends=EVIL))
    logged = [r.getMessage() for r in caplog.records if r.name == "debian.deb822"]
    assert logged and all("\\x1b]2;owned\\x07" in m and "\x1b" not in m for m in logged), logged
    assert "is not a package name" in str(e.value) and "\x1b" not in str(e.value), e.value


def test_a_version_that_is_no_debian_version_is_a_clear_error(tmp_path):
    """Debian versions are compared (a newer candidate, `(>= 1.0)`, smith outdated): one that is
    not a Debian version was a ValueError traceback from python-debian."""
    lock(tmp_path, _evil_repo(tmp_path, "1.0"))
    _evil_repo(tmp_path, "2_0^1")  # a version's characters (rpm's), not Debian's syntax
    with pytest.raises(SmithError) as e:
        outdated_cli.main([str(tmp_path / "lock.json")])
    assert "version '2_0^1' is not a Debian version" in str(e.value), e.value


@pytest.mark.parametrize("name", ["../../evil", "a/b", "x=y", ".hidden", "-option"])
def test_a_package_name_that_is_not_a_name_is_refused_when_it_is_chosen(tmp_path, name):
    # Names become path segments (`in/NAME` of the merge) and arguments (`NAME=...`, `--name`).
    hello = dict(DEB, Depends="foo")
    evil = dict(DEB, Package=name, Provides="foo", Filename="pool/main/evil_1.0_amd64.deb")
    url = deb_repo(tmp_path, packages=(_paragraph(hello) + "\n" + _paragraph(evil)).encode())
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url)
    assert "Package %r is not a package name" % name in str(e.value) and HINT in str(e.value), e.value
    assert not (tmp_path / "lock.json").exists()


def test_an_rpm_package_name_that_is_not_a_name_is_refused(tmp_path):
    url = rpm_repo(tmp_path)
    primary = tmp_path / "repo/repodata/primary.xml"
    primary.write_bytes(primary.read_bytes().replace(b"<name>hello</name>", b"<name>../hello</name>"))
    repomd = tmp_path / "repo/repodata/repomd.xml"
    data = primary.read_bytes()
    text = repomd.read_text()
    old_sum = text.split('<checksum type="sha256">')[1].split("<")[0]
    old_size = text.split("<size>")[1].split("<")[0]
    repomd.write_text(text.replace(old_sum, hashlib.sha256(data).hexdigest())
                      .replace("<size>%s<" % old_size, "<size>%d<" % len(data)))
    with pytest.raises(SmithError) as e:
        lock(tmp_path, url, "rpm", "--cache-dir", str(tmp_path / "cache"))
    assert "name '../hello' is not a package name" in str(e.value), e.value
