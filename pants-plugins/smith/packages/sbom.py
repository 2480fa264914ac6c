"""An SPDX 2.3 JSON SBOM for an image built from locked packages.

Packages come from the lockfile (name, version, architecture, sha256, download URL, purl);
files come from the image's layers applied as a runtime would (smith.oci.unpack: whiteouts
and opaque directories), each with SHA1 (required by SPDX) and SHA256, and is
tied to its package of origin by a `CONTAINS` relationship when a package tree ships the
same path with the same content. Deterministic: no random namespace, `created` is
SOURCE_DATE_EPOCH (default 1970-01-01T00:00:00Z).
"""
import hashlib
import os
import re
import stat
import tempfile
import time
import urllib.parse
from typing import Any, Dict, List, Optional

from smith.errors import SmithError
from smith.packages import lockfile
from smith.oci.unpack import apply_layer_file
from smith.safe_fs import remove_tree
from smith.untar import Budget, Limits

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


def read_layers(layers: List[str], limits: Optional[Limits] = None) -> Dict[str, Dict[str, str]]:
    """Regular files of the image the layer tars (bottom first, gzip, zstd or plain) make:
    path -> {"sha1", "sha256"}. The layers are applied by the unpacker minimize uses, so
    whiteouts, opaque directories and hard links mean what they mean to a runtime; the caps of
    `limits` hold per layer and for all of them together."""
    limits = limits or Limits.from_env()
    budget = Budget(limits)
    tmp = tempfile.mkdtemp(prefix="smith-sbom-")
    try:
        for layer in layers:
            apply_layer_file(layer, tmp, limits=limits, budget=budget)
        files = {}
        stack = [""]
        while stack:  # iterative: a deep tree is no RecursionError
            rel = stack.pop()
            with os.scandir(os.path.join(tmp, rel) if rel else tmp) as it:
                entries = list(it)
            for e in entries:
                path = rel + "/" + e.name if rel else e.name
                if e.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif stat.S_ISREG(e.stat(follow_symlinks=False).st_mode):
                    h1, h256 = hashlib.sha1(), hashlib.sha256()
                    with open(e.path, "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 20), b""):
                            h1.update(chunk)
                            h256.update(chunk)
                    files[path] = {"sha1": h1.hexdigest(), "sha256": h256.hexdigest()}
        return files
    finally:
        remove_tree(tmp)


def created(epoch: Optional[int]) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch or 0))


def locked_for(lock: Dict[str, Any], architecture: Optional[str]) -> Dict[str, Dict[str, Any]]:
    """name -> lock entry of the packages one architecture's image is built from."""
    if architecture is None:
        several = lockfile.architectures(lock)
        if len(several) > 1:
            raise SmithError("--lock is locked for %s; give --architecture (the image's)" % ", ".join(several))
        return {p["name"]: p for p in lock["packages"]}
    wanted = {(p.name, p.architecture, p.version) for p in lockfile.pins(lock, "--lock", architecture=architecture)}
    return {p["name"]: p for p in lock["packages"] if (p["name"], p["architecture"], p["version"]) in wanted}


def build(name: str, lock: Dict[str, Any], package_trees: Dict[str, str], layers: List[str],
          epoch: Optional[int] = None, limits: Optional[Limits] = None,
          architecture: Optional[str] = None) -> Dict[str, Any]:
    locked = locked_for(lock, architecture)
    for pkg in package_trees:
        if pkg not in locked:
            raise SmithError("--package %s: %s is not in the lockfile" % (pkg, pkg))
    kind = lock["repository"]["kind"]
    image_files = read_layers(layers, limits)
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
            for path, sums in read_layers([package_trees[pkg_name]], limits).items():
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
