"""Read an rpm (yum/dnf) repository: repodata/repomd.xml (checked with gpgv against
repomd.xml.asc when a keyring is given), then the primary metadata it lists
(primary.xml[.gz|.xz|.zst|.bz2]) checked against repomd's checksum and size.

Requires/Provides/Conflicts use EVR (rpmvercmp.py). File dependencies (`/bin/sh`) are met
by the <file> entries of primary.xml (which lists the files under */bin/ and /etc/).
Rich dependencies: `(a or b or c)` becomes alternatives and `(a and b)` several clauses;
other forms (if/unless/with/without, nesting) are refused with an error naming them.
"""
import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional

from smith.errors import SmithError
from smith.packages import gpg
from smith.packages.compression import decompress
from smith.packages.fetch import check_digest, fetch, fetch_verified
from smith.packages.model import Package, Relation
from smith.packages.repo_config import RepoConfig
from smith.packages.universe import Universe

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
RPM_NS = "{http://linux.duke.edu/metadata/rpm}"
FLAGS = {"EQ": "=", "LT": "<<", "LE": "<=", "GT": ">>", "GE": ">="}
TEXT_OPS = {"=": "=", "==": "=", "<": "<<", "<=": "<=", ">": ">>", ">=": ">="}


def evr_text(epoch: Optional[str], ver: Optional[str], rel: Optional[str]) -> Optional[str]:
    if not ver:
        return None
    text = ver if not rel else "%s-%s" % (ver, rel)
    return text if not epoch or epoch == "0" else "%s:%s" % (epoch, text)


def _simple(text: str, where: str) -> Relation:
    parts = text.split()
    if len(parts) == 1:
        return Relation(parts[0])
    if len(parts) == 3 and parts[1] in TEXT_OPS:
        return Relation(parts[0], TEXT_OPS[parts[1]], parts[2])
    raise SmithError("%s: cannot parse %r; write `name`, or `name OP version` with OP one of "
                     "= < <= > >=" % (where, text))


def parse_requirement(text: str, where: str) -> List[List[Relation]]:
    """'hello >= 1.0' -> [[hello>=1.0]]; '(a or b)' -> [[a, b]]; '(a and b)' -> [[a], [b]]."""
    text = text.strip()
    if not text.startswith("("):
        return [[_simple(text, where)]]
    inner = text[1:-1] if text.endswith(")") else None
    if inner is None or "(" in inner or ")" in inner:
        raise SmithError("%s: rich dependency %s is not supported (only a flat `(a or b)` or "
                         "`(a and b)`); exclude the package that needs it" % (where, text))
    words = re.split(r"\s+(or|and|if|else|unless|with|without)\s+", inner)
    ops = set(words[1::2])
    if len(ops) > 1 or not ops <= {"or", "and"}:
        raise SmithError("%s: rich dependency %s is not supported (only a flat `(a or b)` or "
                         "`(a and b)`); exclude the package that needs it" % (where, text))
    terms = [_simple(w, where) for w in words[0::2]]
    return [terms] if ops == {"or"} else [[t] for t in terms]


class RpmUniverse(Universe):
    def __init__(self) -> None:
        super().__init__("rpm")

    def build(self, record) -> Package:
        return record


def _entries(fmt, tag: str) -> List[Dict[str, str]]:
    node = fmt.find(RPM_NS + tag) if fmt is not None else None
    return [dict(e.attrib) for e in node.findall(RPM_NS + "entry")] if node is not None else []


def _relation(entry: Dict[str, str]) -> Relation:
    op = FLAGS.get(entry.get("flags", ""))
    version = evr_text(entry.get("epoch"), entry.get("ver"), entry.get("rel")) if op else None
    return Relation(entry["name"], op if version else None, version)


def _package(node, base_url: str, arches: List[str]) -> Optional[Package]:
    name = node.findtext(COMMON_NS + "name")
    arch = node.findtext(COMMON_NS + "arch")
    if arch not in arches:
        return None
    v = node.find(COMMON_NS + "version").attrib
    version = evr_text(v.get("epoch"), v.get("ver"), v.get("rel"))
    where = "package %s %s" % (name, version)
    checksum = node.find(COMMON_NS + "checksum")
    if checksum is None or checksum.get("type") != "sha256":
        raise SmithError("%s has no sha256 checksum in primary.xml; recreate the repository "
                         "with createrepo_c (sha256 is its default)" % where)
    fmt = node.find(COMMON_NS + "format")
    depends: List[List[Relation]] = []
    for e in _entries(fmt, "requires"):
        if e["name"].startswith("rpmlib("):
            continue
        if e["name"].startswith("("):
            try:
                depends.extend(parse_requirement(e["name"], where))
            except SmithError:
                # Only an error if the solver reaches it: kept as a name nothing provides.
                depends.append([Relation(e["name"])])
        else:
            depends.append([_relation(e)])
    provides = [_relation(e) for e in _entries(fmt, "provides")]
    conflicts = [_relation(e) for e in _entries(fmt, "conflicts")]
    files = [f.text for f in fmt.findall(COMMON_NS + "file")] if fmt is not None else []
    provides.extend(Relation(f) for f in files if f)
    href = node.find(COMMON_NS + "location").get("href")
    size = int(node.find(COMMON_NS + "size").get("package"))
    return Package(name, version, arch, base_url + "/" + href, checksum.text.strip().lower(), size,
                   depends, provides, conflicts, files, "primary")


def load(repo: RepoConfig, cache_dir: Optional[str] = None) -> RpmUniverse:
    repomd_url = repo.url + "/repodata/repomd.xml"
    repomd = fetch(repomd_url)
    if not repo.trusted:
        if not repo.keyring:
            raise SmithError("rpm repository %s: set a keyring to check repomd.xml.asc, or "
                             "trusted=true" % repo.url)
        gpg.verify(repo.keyring, repomd, fetch(repomd_url + ".asc"), repomd_url)
    try:
        root = ET.fromstring(repomd)
    except ET.ParseError as e:
        raise SmithError("%s is not valid XML: %s" % (repomd_url, e))
    primary = None
    for data in root.findall(REPO_NS + "data"):
        if data.get("type") == "primary":
            primary = data
    if primary is None:
        raise SmithError("%s lists no primary metadata" % repomd_url)
    url = repo.url + "/" + primary.find(REPO_NS + "location").get("href")
    checksum = primary.find(REPO_NS + "checksum")
    size = primary.findtext(REPO_NS + "size")
    algorithm = {"sha": "sha1"}.get(checksum.get("type", "sha256"), checksum.get("type", "sha256"))
    if algorithm == "sha256":
        raw = fetch_verified(url, checksum.text.strip(), int(size) if size else None, cache_dir)
    else:
        raw = fetch(url)
        check_digest(raw, algorithm, checksum.text.strip(), int(size) if size else None, url)
    try:
        doc = ET.fromstring(decompress(raw, url))
    except ET.ParseError as e:
        raise SmithError("%s is not valid XML: %s" % (url, e))
    universe = RpmUniverse()
    for node in doc.findall(COMMON_NS + "package"):
        if node.get("type") != "rpm":
            continue
        p = _package(node, repo.url, repo.architectures)
        if p is not None:
            universe.add(p.name, p, [r.name for r in p.provides])
    return universe
