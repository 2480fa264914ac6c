"""Read an rpm (yum/dnf) repository: repodata/repomd.xml (checked with gpgv against
repomd.xml.asc when a keyring is given), then the primary metadata it lists
(primary.xml[.gz|.xz|.zst|.bz2]) checked against repomd's checksum and size.

Requires/Provides/Conflicts use EVR (rpmvercmp.py). File dependencies (`/bin/sh`) are met
by the <file> entries of primary.xml (which lists the files under */bin/ and /etc/).
Rich dependencies: `(a or b or c)` becomes alternatives and `(a and b)` several clauses;
other forms (if/unless/with/without, nesting) are refused with an error naming them.
"""
import hashlib
import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

from smith.errors import SmithError
from smith.packages import fields, gpg
from smith.packages.compression import decompress
from smith.packages.fetch import check_digest, fetch, fetch_verified
from smith.packages.model import Package, Relation
from smith.packages.repo_config import RepoConfig
from smith.packages.universe import Universe
from smith.text import printable

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
RPM_NS = "{http://linux.duke.edu/metadata/rpm}"
FLAGS = {"EQ": "=", "LT": "<<", "LE": "<=", "GT": ">>", "GE": ">="}
# repomd.xml checksum types (createrepo_c's; "sha" is yum's old name of sha1) -> hashlib name
CHECKSUMS = {"sha": "sha1", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256",
             "sha384": "sha384", "sha512": "sha512"}
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


def _relation(entry: Dict[str, str], where: str) -> Relation:
    if not entry.get("name"):
        raise SmithError("%s: a dependency entry has no name; %s" % (where, fields.HINT))
    op = FLAGS.get(entry.get("flags", ""))
    version = evr_text(entry.get("epoch"), entry.get("ver"), entry.get("rel")) if op else None
    return Relation(entry["name"], op if version else None, version)


def _package(node, repo: RepoConfig, what: str) -> Optional[Package]:
    name = node.findtext(COMMON_NS + "name")
    arch = node.findtext(COMMON_NS + "arch")
    if arch not in repo.architectures:
        return None
    v = node.find(COMMON_NS + "version")
    version = evr_text(v.get("epoch"), v.get("ver"), v.get("rel")) if v is not None else None
    where = "rpm repository %s: %s: package %s %s" % (repo.url, what, printable(name or "?", 100),
                                                      printable(version or "?", 100))
    fields.package_name(name, "name", where)
    fields.version(version, "version", where)
    checksum = node.find(COMMON_NS + "checksum")
    if checksum is None or checksum.get("type") != "sha256":
        raise SmithError("%s has no sha256 checksum in primary.xml; recreate the repository "
                         "with createrepo_c (sha256 is its default)" % where)
    sha256 = fields.sha256((checksum.text or "").strip(), "checksum", where)
    location, size = node.find(COMMON_NS + "location"), node.find(COMMON_NS + "size")
    href = fields.relative_path(location.get("href") if location is not None else None,
                                "location href", where)
    size_bytes = fields.size(size.get("package") if size is not None else None, "size package",
                             where, fields.MAX_PACKAGE_BYTES)
    fmt = node.find(COMMON_NS + "format")
    depends: List[List[Relation]] = []
    for e in _entries(fmt, "requires"):
        if e.get("name", "").startswith("rpmlib("):
            continue
        if e.get("name", "").startswith("("):
            try:
                depends.extend(parse_requirement(e["name"], where))
            except SmithError:
                # Only an error if the solver reaches it: kept as a name nothing provides.
                depends.append([Relation(e["name"])])
        else:
            depends.append([_relation(e, where)])
    provides = [_relation(e, where) for e in _entries(fmt, "provides")]
    conflicts = [_relation(e, where) for e in _entries(fmt, "conflicts")]
    files = [f.text for f in fmt.findall(COMMON_NS + "file")] if fmt is not None else []
    provides.extend(Relation(f) for f in files if f)
    return Package(name, version, arch, repo.url + "/" + href, sha256, size_bytes,
                   depends, provides, conflicts, files, "primary")


def _primary(repo: RepoConfig, repomd_url: str, root) -> Tuple[str, str, str, Optional[int]]:
    """(url, checksum algorithm, checksum, size) of the primary metadata repomd.xml lists."""
    primary = None
    for data in root.findall(REPO_NS + "data"):
        if data.get("type") == "primary":
            primary = data
    if primary is None:
        raise SmithError("%s lists no primary metadata" % repomd_url)
    where = "rpm repository %s: %s: the primary metadata" % (repo.url, repomd_url)
    location, checksum = primary.find(REPO_NS + "location"), primary.find(REPO_NS + "checksum")
    href = fields.relative_path(location.get("href") if location is not None else None,
                                "location href", where)
    if checksum is None:
        raise SmithError("%s: checksum is missing; %s" % (where, fields.HINT))
    kind = checksum.get("type", "sha256")
    algorithm = CHECKSUMS.get(kind)
    if algorithm is None:
        raise SmithError("%s: checksum type %r is not one of %s; %s" % (
            where, printable(kind, 40), ", ".join(sorted(CHECKSUMS)), fields.HINT))
    digest = (checksum.text or "").strip().lower()
    if algorithm == "sha256":  # it names a file of the metadata cache
        fields.sha256(digest, "checksum", where)
    elif not re.match(r"[0-9a-f]{%d}\Z" % (2 * hashlib.new(algorithm).digest_size), digest):
        raise SmithError("%s: checksum %r is not a %s digest; %s"
                         % (where, printable(digest, 100), algorithm, fields.HINT))
    size = primary.findtext(REPO_NS + "size")
    return (repo.url + "/" + href, algorithm, digest,
            fields.size(size, "size", where, fields.MAX_INDEX_BYTES) if size else None)


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
    url, algorithm, digest, size = _primary(repo, repomd_url, root)
    if algorithm == "sha256":
        raw = fetch_verified(url, digest, size, cache_dir)
    else:
        raw = fetch(url, fields.MAX_INDEX_BYTES if size is None else size)
        check_digest(raw, algorithm, digest, size, url)
    try:
        doc = ET.fromstring(decompress(raw, url))
    except ET.ParseError as e:
        raise SmithError("%s is not valid XML: %s" % (url, e))
    universe = RpmUniverse()
    for node in doc.findall(COMMON_NS + "package"):
        if node.get("type") != "rpm":
            continue
        p = _package(node, repo, url)
        if p is not None:
            universe.add(p.name, p, [r.name for r in p.provides])
    return universe
