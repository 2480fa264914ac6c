"""An SPDX 2.3 JSON SBOM for an image built from locked packages.

Packages come from the lockfile (name, version, architecture, sha256, download URL, purl);
files come from the image's layers stacked as a runtime would (OCI whiteouts and opaque
directories applied), each with SHA1 (required by SPDX) and SHA256, and is
tied to its package of origin by a `CONTAINS` relationship when a package tree ships the
same path with the same content. Deterministic: no random namespace, `created` is
SOURCE_DATE_EPOCH (default 1970-01-01T00:00:00Z).
"""
import hashlib
import re
import tarfile
import time
import urllib.parse
from typing import Any, Dict, List, Optional

from smith.errors import SmithError

NAMESPACE = "https://smith.invalid/spdx/"


def _spdx_id(prefix: str, text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9.-]", "-", text)
    return "SPDXRef-%s-%s-%s" % (prefix, safe[:60], hashlib.sha256(text.encode()).hexdigest()[:8])


def purl(kind: str, repository: Dict[str, Any], p: Dict[str, Any]) -> str:
    quote = lambda s: urllib.parse.quote(s, safe="")   # noqa: E731
    if kind == "deb":
        distro = (repository.get("suites") or [""])[0]
        return "pkg:deb/debian/%s@%s?arch=%s&distro=%s" % (
            quote(p["name"]), quote(p["version"]), quote(p["architecture"]), quote(distro))
    return "pkg:rpm/%s@%s?arch=%s" % (quote(p["name"]), quote(p["version"]), quote(p["architecture"]))


def _digests(data: bytes) -> Dict[str, str]:
    return {"sha1": hashlib.sha1(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}


def _clean(name: str) -> str:
    return (name[2:] if name.startswith("./") else name).strip("/")


def _drop(files: Dict[str, Dict[str, str]], path: str, below_only: bool = False) -> None:
    """Forget path (unless below_only) and everything under it."""
    prefix = path + "/" if path else ""
    for k in [k for k in files if k.startswith(prefix) or (k == path and not below_only)]:
        del files[k]


def read_layers(layers: List[str]) -> Dict[str, Dict[str, str]]:
    """Regular files of the image the layer tars (bottom first, gzip or not) make: path ->
    {"sha1", "sha256"}. A layer's whiteouts (`.wh.NAME`, `.wh..wh..opq`) remove only what the
    layers below it hold; any entry replaces what was at its path below (a file over a
    directory hides the directory's contents); hard links get their target's digests."""
    files: Dict[str, Dict[str, str]] = {}
    for layer in layers:
        try:
            with tarfile.open(layer) as t:
                members = t.getmembers()
                for m in members:  # whiteouts first: they only ever apply to lower layers
                    parent, _, base = _clean(m.name).rpartition("/")
                    if base == ".wh..wh..opq":
                        _drop(files, parent, below_only=True)
                    elif base.startswith(".wh."):
                        _drop(files, (parent + "/" if parent else "") + base[len(".wh."):])
                added: Dict[str, Dict[str, str]] = {}
                for m in members:
                    name = _clean(m.name)
                    if not name or name.rpartition("/")[2].startswith(".wh."):
                        continue
                    if not m.isdir():
                        _drop(files, name)
                    if m.isfile():
                        added[name] = _digests(t.extractfile(m).read())
                    elif m.islnk() and _clean(m.linkname) in added:
                        added[name] = dict(added[_clean(m.linkname)])
                    elif m.islnk() and _clean(m.linkname) in files:
                        added[name] = dict(files[_clean(m.linkname)])
                files.update(added)
        except (OSError, tarfile.TarError) as e:
            raise SmithError("cannot read layer %s: %s" % (layer, e))
    return files


def created(epoch: Optional[int]) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch or 0))


def build(name: str, lock: Dict[str, Any], package_trees: Dict[str, str], layers: List[str],
          epoch: Optional[int] = None) -> Dict[str, Any]:
    locked = {p["name"]: p for p in lock["packages"]}
    for pkg in package_trees:
        if pkg not in locked:
            raise SmithError("--package %s: %s is not in the lockfile" % (pkg, pkg))
    kind = lock["repository"]["kind"]
    image_files = read_layers(layers)
    image_digest = hashlib.sha256("".join(
        "%s %s\n" % (path, image_files[path]["sha256"]) for path in sorted(image_files)).encode()).hexdigest()
    image_id = "SPDXRef-Image"
    packages: List[Dict[str, Any]] = [{
        "SPDXID": image_id, "name": name, "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
    }]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": image_id}]
    origin: Dict[str, str] = {}
    for pkg_name in sorted(locked):
        p = locked[pkg_name]
        pid = _spdx_id("Package", pkg_name)
        packages.append({
            "SPDXID": pid, "name": pkg_name, "versionInfo": p["version"],
            "downloadLocation": p["url"], "filesAnalyzed": False,
            "checksums": [{"algorithm": "SHA256", "checksumValue": p["sha256"]}],
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl(kind, lock["repository"], p)}],
            "comment": "architecture %s" % p["architecture"],
            "primaryPackagePurpose": "LIBRARY" if pkg_name not in lock["request"]["packages"] else "APPLICATION",
        })
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": pid})
        if pkg_name in package_trees:
            for path, sums in read_layers([package_trees[pkg_name]]).items():
                if image_files.get(path, {}).get("sha256") == sums["sha256"]:
                    origin.setdefault(path, pid)
    # A package that CONTAINS files has filesAnalyzed true and needs its verification code:
    # sha1 of the sorted sha1s of its files (SPDX 2.3 clause 7.9).
    contained: Dict[str, List[str]] = {image_id: [f["sha1"] for f in image_files.values()]}
    for path, pid in origin.items():
        contained.setdefault(pid, []).append(image_files[path]["sha1"])
    for p in packages:
        if p["SPDXID"] in contained:
            p["filesAnalyzed"] = True
            p["packageVerificationCode"] = {"packageVerificationCodeValue": hashlib.sha1(
                "".join(sorted(contained[p["SPDXID"]])).encode()).hexdigest()}
    files = []
    for path in sorted(image_files):
        fid = _spdx_id("File", path)
        sums = image_files[path]
        entry = {"SPDXID": fid, "fileName": "./" + path,
                 "checksums": [{"algorithm": "SHA1", "checksumValue": sums["sha1"]},
                               {"algorithm": "SHA256", "checksumValue": sums["sha256"]}]}
        if path not in origin:
            entry["comment"] = "not shipped by any locked package (added or changed by the build)"
        files.append(entry)
        relationships.append({"spdxElementId": origin.get(path, image_id),
                              "relationshipType": "CONTAINS", "relatedSpdxElement": fid})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": NAMESPACE + urllib.parse.quote(name, safe="") + "-" + image_digest,
        "creationInfo": {"created": created(epoch), "creators": ["Tool: smith"]},
        "packages": packages,
        "files": files,
        "relationships": relationships,
    }
