"""Read a Debian repository: InRelease (or Release + Release.gpg) checked with gpgv, then
Packages(.xz|.gz) of each suite/component/architecture checked against the Release SHA256."""
import codecs
import io
import json
import logging
import os
from typing import Dict, List, NamedTuple, Optional, Tuple

from debian import deb822

from smith import safe_json
from smith.errors import SmithError, for_terminal
from smith.atomic import atomic_file
from smith.packages import fields, gpg
from smith.packages.compression import decompress
from smith.packages.fetch import fetch, fetch_verified
from smith.packages.model import Package, Relation
from smith.packages.repo_config import RepoConfig
from smith.packages.universe import Universe
from smith.text import printable

FIELDS = ("Package", "Version", "Architecture", "Filename", "SHA256", "Size", "Depends",
          "Pre-Depends", "Provides", "Conflicts", "Breaks", "Priority")
# apt prefers the provider of a virtual package with the highest Priority.
PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}
# Most compact first; plain Packages last (compression.decompress goes by the magic bytes, capped).
INDEX_NAMES = ("Packages.xz", "Packages.gz", "Packages")
OLD_OPS = {"<": "<=", ">": ">="}
MAX_RECORDS_BYTES = 256 << 20  # Debian's main/amd64 gives ~28 MB


class _Escaped(logging.Filter):
    """python-debian logs a relation it cannot parse as it is ('cannot parse package relationship
    "..."'): the repository's text, so its control characters are escaped before any handler
    (Python's last resort prints to stderr) writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = for_terminal(record.getMessage()), ()
        return True


logging.getLogger("debian.deb822").addFilter(_Escaped())


def parse_relations(text: str, where: str) -> List[List[Relation]]:
    """'a (>= 1) | b, c:any' -> [[a>=1, b], [c]] (architecture qualifiers are dropped)."""
    out = []
    if not text.strip():
        return out
    for clause in deb822.PkgRelation.parse_relations(text):
        alts = []
        for alt in clause:
            if not alt.get("name"):
                raise SmithError("%s: cannot parse the relation %r" % (where, text))
            op, ver = alt["version"] if alt.get("version") else (None, None)
            alts.append(Relation(alt["name"], OLD_OPS.get(op, op), ver))
        if alts:
            out.append(alts)
    return out


class DebUniverse(Universe):
    def __init__(self, base_url: str) -> None:
        super().__init__("deb")
        self.base_url = base_url

    def build(self, record) -> Package:
        r: Dict[str, str] = record
        where = "deb repository %s: %s: package %s %s" % (
            self.base_url, r["_source"], printable(r["Package"], 100), printable(r.get("Version", "?"), 100))
        fields.package_name(r["Package"], "Package", where)
        fields.version(r.get("Version"), "Version", where)
        filename = fields.relative_path(r.get("Filename"), "Filename", where)
        sha256 = fields.sha256(r.get("SHA256"), "SHA256", where)
        size = fields.size(r.get("Size"), "Size", where, fields.MAX_PACKAGE_BYTES)
        deps = parse_relations(r.get("Pre-Depends", ""), where) + parse_relations(r.get("Depends", ""), where)
        conflicts = [a for f in ("Conflicts", "Breaks") for c in parse_relations(r.get(f, ""), where)
                     for a in c]
        provides = [a for c in parse_relations(r.get("Provides", ""), where) for a in c]
        return Package(r["Package"], r["Version"], r["Architecture"], self.base_url + "/" + filename,
                       sha256, size, deps, provides, conflicts, [], r["_source"],
                       PRIORITY_RANK.get(r.get("Priority", ""), 9))


class Release(NamedTuple):
    """What smith reads of a Release file; the SHA256 lines are checked when used."""

    what: str                        # its URL
    sums: Dict[str, Tuple[str, str]]  # file name -> (sha256, size), as written
    by_hash: bool                    # Acquire-By-Hash: yes
    no_all: bool                     # Packages has no binary-all index


def _release(repo: RepoConfig, suite: str) -> Release:
    base = "%s/dists/%s" % (repo.url, suite)
    try:
        data, sig = fetch(base + "/InRelease"), None
        what = base + "/InRelease"
    except SmithError as inrelease_error:
        try:
            data = fetch(base + "/Release")
        except SmithError:
            raise inrelease_error
        what = base + "/Release"
        sig = None if repo.trusted else fetch(base + "/Release.gpg")
    if not repo.trusted:
        data = gpg.verify(repo.keyring or "", data, sig, what)
    elif sig is None and data.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----"):
        # Trusted: take the clearsigned body without checking it.
        data = data.partition(b"\n\n")[2].split(b"\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    try:
        paragraph = deb822.Deb822(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SmithError("deb repository %s: %s is not a Release file (%s); %s"
                         % (repo.url, what, printable(str(e), 200), fields.HINT)) from None
    if "SHA256" not in paragraph:
        raise SmithError("%s has no SHA256 checksums; smith needs them to verify the indexes" % what)
    # Each line: SHA256 SIZE NAME; the names smith looks up are its own, so any other is ignored.
    sums = {}
    for line in paragraph["SHA256"].splitlines():
        words = line.split()
        if len(words) == 3:
            sums[words[2]] = (words[0], words[1])
        elif words:
            raise SmithError("deb repository %s: %s: the SHA256 line '%s' is not `SHA256 SIZE NAME`; %s"
                             % (repo.url, what, printable(line, 200), fields.HINT))
    return Release(what, sums, paragraph.get("Acquire-By-Hash", "no").lower() == "yes",
                   "Packages" in paragraph.get("No-Support-for-Architecture-all", "").split())


def _records(repo: RepoConfig, suite: str, release: Release, path_dir: str,
             cache_dir: Optional[str]) -> Optional[List[Dict[str, str]]]:
    """The paragraphs of one Packages index (only FIELDS), or None if the Release lists none.
    With a cache dir, parsed records are kept as SHA256.records.json next to the verified
    index: parsing Debian's main/amd64 takes ~6 s, loading the records well under 1 s."""
    for name in INDEX_NAMES:
        listed = release.sums.get(path_dir + "/" + name)
        if listed is None:
            continue
        # Both name files (the cache's, a by-hash URL) and bound the download.
        where = "deb repository %s: %s: the SHA256 line of %s" % (repo.url, release.what, path_dir + "/" + name)
        sha256 = fields.sha256(listed[0], "sha256", where)
        size = fields.size(listed[1], "size", where, fields.MAX_INDEX_BYTES)
        cached = os.path.join(cache_dir, sha256 + ".records.json") if cache_dir else None
        if cached and os.path.exists(cached):
            kept = _cached_records(cached)
            if kept is not None:
                return kept  # else a damaged cache entry: rebuilt below
        # By-hash URLs do not change under us while the mirror updates.
        url = "%s/dists/%s/%s/%s" % (repo.url, suite, path_dir,
                                     "by-hash/SHA256/" + sha256 if release.by_hash else name)
        try:
            data = fetch_verified(url, sha256, size, cache_dir)
        except SmithError:
            if not release.by_hash:
                raise
            url = "%s/dists/%s/%s/%s" % (repo.url, suite, path_dir, name)
            data = fetch_verified(url, sha256, size, cache_dir)
        text = decompress(data, url)
        _check_utf8(text, "deb repository %s: %s" % (repo.url, url))
        # Parsed from bytes: ~7% faster than from the decoded str (Debian's main/amd64: 4.4 s)
        records = [{k: para[k] for k in FIELDS if k in para}
                   for para in deb822.Packages.iter_paragraphs(io.BytesIO(text), use_apt_pkg=False,
                                                               fields=FIELDS)]
        if cached:
            with atomic_file(cached, "w", perms=0o600, encoding="utf-8") as f:
                json.dump(records, f)
        return records
    return None


def _check_utf8(data: bytes, what: str) -> None:
    """Checked before parsing (deb822 would log a misleading hint, then raise), 64 KiB at a time:
    the decoded text of Debian's main/amd64 would be 50 MB more at the peak."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view, step = memoryview(data), 1 << 16
    try:
        for start in range(0, len(data), step):
            decoder.decode(view[start:start + step], final=start + step >= len(data))
    except UnicodeDecodeError as e:
        raise SmithError("%s is not UTF-8 text (%s); %s" % (what, e.reason, fields.HINT)) from None


def _cached_records(path: str) -> Optional[List[Dict[str, str]]]:
    """The records kept at `path` if they have the shape _records writes (a list of objects of
    strings), else None. Nothing vouches for the cache's files (the index's sha256 names them but
    does not cover them): anything else was damaged, and is rebuilt from the verified index."""
    try:
        records = safe_json.load_file(path, max_bytes=MAX_RECORDS_BYTES, expect=list)
    except SmithError:
        return None
    for r in records:
        if type(r) is not dict or not all(type(v) is str for v in r.values()):
            return None
    return records


def load(repo: RepoConfig, cache_dir: Optional[str] = None) -> DebUniverse:
    universe = DebUniverse(repo.url)
    wanted_arches = set(repo.architectures) | {"all"}
    for suite in repo.suites:
        release = _release(repo, suite)
        index_arches = [a for a in repo.architectures if a != "all"]
        if not release.no_all:
            index_arches.append("all")
        for component in repo.components:
            found = 0
            for arch in index_arches:
                where = "%s/binary-%s" % (component, arch)
                records = _records(repo, suite, release, where, cache_dir)
                if records is None:
                    continue
                found += 1
                source = "%s %s" % (suite, where)
                for record in records:
                    if record.get("Architecture") not in wanted_arches or "Package" not in record:
                        continue
                    record["_source"] = source
                    provided = [p.split("(")[0].split(":")[0].strip()
                                for p in record.get("Provides", "").split(",") if p.strip()]
                    universe.add(record["Package"], record, provided)
            if not found:
                raise SmithError("suite %s of %s lists no Packages index for component %s and "
                                 "architectures %s; check the repository's components and "
                                 "architectures" % (suite, repo.url, component, repo.architectures))
    return universe
