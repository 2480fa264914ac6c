"""SPDX 2.3 SBOM of an image made from locked packages of the test deb repository: the
document has the spec's required fields, every package and file is there with the right
checksums, and files point to the package that shipped them."""
import hashlib
import io
import json
import os
import re
import tarfile
import urllib.request

import pytest

from smith.errors import SmithError
from smith.packages import extract_cli, lock_cli, sbom, sbom_cli
from smith.testutil import fixture_repos

SPDX_ID = re.compile(r"^SPDXRef-[A-Za-z0-9.-]+$")
CHECKSUM_ALGORITHMS = {"SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3-256", "SHA3-384",
                       "SHA3-512", "BLAKE2b-256", "BLAKE2b-384", "BLAKE2b-512", "BLAKE3", "MD2",
                       "MD4", "MD5", "MD6", "ADLER32"}
RELATIONSHIP_TYPES = {"DESCRIBES", "CONTAINS", "DEPENDS_ON", "GENERATED_FROM"}


def validate_spdx23(doc):
    """The required fields of SPDX 2.3 (clauses 6, 7, 8 and 11) and their formats."""
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["dataLicense"] == "CC0-1.0"
    assert doc["SPDXID"] == "SPDXRef-DOCUMENT"
    assert doc["name"]
    assert re.match(r"^[a-z][a-z0-9+.-]*://[^#]+$", doc["documentNamespace"])
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", doc["creationInfo"]["created"])
    assert doc["creationInfo"]["creators"]
    assert all(re.match(r"^(Tool|Person|Organization): .+", c) for c in doc["creationInfo"]["creators"])
    ids = ["SPDXRef-DOCUMENT"]
    for p in doc["packages"]:
        assert p["name"] and p["downloadLocation"] and SPDX_ID.match(p["SPDXID"])
        assert p.get("filesAnalyzed") is False or re.match(
            "^[0-9a-f]{40}$", p["packageVerificationCode"]["packageVerificationCodeValue"])
        for c in p.get("checksums", []):
            assert c["algorithm"] in CHECKSUM_ALGORITHMS and re.match("^[0-9a-f]+$", c["checksumValue"])
        ids.append(p["SPDXID"])
    for f in doc["files"]:
        assert f["fileName"].startswith("./") and SPDX_ID.match(f["SPDXID"])
        assert any(c["algorithm"] == "SHA1" for c in f["checksums"])   # SHA1 is mandatory
        ids.append(f["SPDXID"])
    assert len(ids) == len(set(ids))
    for r in doc["relationships"]:
        assert r["relationshipType"] in RELATIONSHIP_TYPES
        assert r["spdxElementId"] in ids and r["relatedSpdxElement"] in ids
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
            "relatedSpdxElement": doc["packages"][0]["SPDXID"]} in doc["relationships"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Lock hello, extract every package, and make an image tree: the packages' files plus
    one file the build adds."""
    tmp = tmp_path_factory.mktemp("sbom")
    root = fixture_repos.deb_repo()
    with fixture_repos.serve(os.path.join(root, "repo")) as url:
        (tmp / "repo.json").write_text(json.dumps({"kind": "deb", "url": url, "suites": ["stable"],
                                                   "keyring": os.path.join(root, "keyring.gpg")}))
        assert lock_cli.main(["--repo", str(tmp / "repo.json"), "--output", str(tmp / "lock.json"),
                              "hello"]) == 0
        lock = json.loads((tmp / "lock.json").read_text())
        trees = {}
        for p in lock["packages"]:
            (tmp / "p.deb").write_bytes(urllib.request.urlopen(p["url"]).read())
            trees[p["name"]] = str(tmp / (p["name"] + ".tar"))
            extract_cli.main(["--output", trees[p["name"]], "--sha256", p["sha256"], str(tmp / "p.deb")])
    contents = {}
    with tarfile.open(tmp / "image.tar", "w") as image:
        for name in sorted(trees):
            with tarfile.open(trees[name]) as t:
                for m in t:
                    if m.isfile():
                        data = t.extractfile(m).read()
                        contents[m.name] = (name, data)
                        image.addfile(m, io.BytesIO(data))
        extra = tarfile.TarInfo("etc/passwd")
        extra.size = 25
        image.addfile(extra, io.BytesIO(b"smith:x:10:10::/write:/x\n"))
    return tmp, lock, trees, contents


def test_sbom(built, monkeypatch):
    tmp, lock, trees, contents = built
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    args = ["--output", str(tmp / "sbom.json"), "--lock", str(tmp / "lock.json"), "--layer",
            str(tmp / "image.tar"), "--name", "hello-image"]
    args += ["--package=%s=%s" % kv for kv in sorted(trees.items())]
    assert sbom_cli.main(args) == 0
    first = (tmp / "sbom.json").read_bytes()
    assert sbom_cli.main(args) == 0
    assert (tmp / "sbom.json").read_bytes() == first     # reproducible
    doc = json.loads(first)
    validate_spdx23(doc)
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    packages = {p["name"]: p for p in doc["packages"][1:]}
    assert sorted(packages) == sorted(p["name"] for p in lock["packages"])
    for p in lock["packages"]:
        spdx = packages[p["name"]]
        assert spdx["versionInfo"] == p["version"] and spdx["downloadLocation"] == p["url"]
        assert spdx["checksums"] == [{"algorithm": "SHA256", "checksumValue": p["sha256"]}]
        assert spdx["externalRefs"][0]["referenceLocator"] == "pkg:deb/debian/%s@%s?arch=%s&distro=stable" % (
            p["name"], p["version"], p["architecture"])
    by_id = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    owner = {r["relatedSpdxElement"]: by_id[r["spdxElementId"]] for r in doc["relationships"]
             if r["relationshipType"] == "CONTAINS" and r["spdxElementId"] in by_id}
    files = {f["fileName"][2:]: f for f in doc["files"]}
    assert sorted(files) == sorted(list(contents) + ["etc/passwd"])
    for path, (pkg, data) in contents.items():
        assert files[path]["checksums"][1] == {"algorithm": "SHA256",
                                               "checksumValue": hashlib.sha256(data).hexdigest()}
        assert owner[files[path]["SPDXID"]] == pkg
    assert owner[files["etc/passwd"]["SPDXID"]] == "hello-image"
    assert owner[files["usr/bin/hello"]["SPDXID"]] == "hello"
    # Packages that contain files say so, with the verification code of clause 7.9.
    hello = packages["hello"]
    sha1 = hashlib.sha1(contents["usr/bin/hello"][1]).hexdigest()
    assert hello["filesAnalyzed"] is True
    assert hello["packageVerificationCode"]["packageVerificationCodeValue"] == hashlib.sha1(
        sha1.encode()).hexdigest()
    contains = {r["spdxElementId"] for r in doc["relationships"] if r["relationshipType"] == "CONTAINS"
                and r["relatedSpdxElement"].startswith("SPDXRef-File-")}
    assert all(p["filesAnalyzed"] == (p["SPDXID"] in contains) for p in doc["packages"])


def _layer(path, entries):
    """A gzip layer: (name, bytes) files, (name, None) directories, (name, "->target") hard links."""
    with tarfile.open(path, "w:gz") as t:
        for name, data in entries:
            m = tarfile.TarInfo(name)
            if data is None:
                m.type = tarfile.DIRTYPE
                t.addfile(m)
            elif isinstance(data, str):
                m.type, m.linkname = tarfile.LNKTYPE, data[2:]
                t.addfile(m)
            else:
                m.size = len(data)
                t.addfile(m, io.BytesIO(data))
    return str(path)


def test_layers_stack_with_whiteouts(tmp_path):
    low = _layer(tmp_path / "0.tar.gz", [
        ("./etc", None), ("./etc/gone", b"a"), ("./etc/kept", b"b"), ("./opaque", None),
        ("./opaque/old", b"c"), ("./dir", None), ("./dir/x", b"d"), ("./over", b"e")])
    high = _layer(tmp_path / "1.tar.gz", [
        # the opaque marker after a new entry of the same directory: it still hides only lower files
        ("./opaque/new", b"f"), ("./opaque/.wh..wh..opq", b""), ("./etc/.wh.gone", b""),
        ("./dir", b"now a file"), ("./over", b"E"), ("./link", "->over")])
    files = sbom.read_layers([low, high])
    digest = lambda data: sbom._digests(data)["sha256"]  # noqa: E731
    assert {k: v["sha256"] for k, v in files.items()} == {
        "etc/kept": digest(b"b"), "opaque/new": digest(b"f"), "dir": digest(b"now a file"),
        "over": digest(b"E"), "link": digest(b"E")}
    with pytest.raises(SmithError, match="cannot read layer .*missing"):
        sbom.read_layers([str(tmp_path / "missing.tar.gz")])
