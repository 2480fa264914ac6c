"""Read a Debian repository: InRelease (or Release + Release.gpg) checked with gpgv, then
Packages(.xz|.gz) of each suite/component/architecture checked against the Release SHA256."""
import gzip
import io
import json
import lzma
import os
from typing import Dict, List, Optional

from debian import deb822

from smith import safe_json
from smith.errors import SmithError
from smith.atomic import atomic_file
from smith.packages import gpg
from smith.packages.fetch import fetch, fetch_verified
from smith.packages.model import Package, Relation
from smith.packages.repo_config import RepoConfig
from smith.packages.universe import Universe

FIELDS = ("Package", "Version", "Architecture", "Filename", "SHA256", "Size", "Depends",
          "Pre-Depends", "Provides", "Conflicts", "Breaks", "Priority")
# apt prefers the provider of a virtual package with the highest Priority.
PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}
# Most compact first; plain Packages last.
INDEX_NAMES = (("Packages.xz", lzma.decompress), ("Packages.gz", gzip.decompress),
               ("Packages", lambda b: b))
OLD_OPS = {"<": "<=", ">": ">="}
MAX_RECORDS_BYTES = 256 << 20  # Debian's main/amd64 gives ~28 MB


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
        where = "package %s %s" % (r["Package"], r["Version"])
        if not r.get("Filename") or not r.get("SHA256") or not r.get("Size"):
            raise SmithError("%s in %s has no Filename/SHA256/Size; the repository index is "
                             "incomplete" % (where, r["_source"]))
        deps = parse_relations(r.get("Pre-Depends", ""), where) + parse_relations(r.get("Depends", ""), where)
        conflicts = [a for f in ("Conflicts", "Breaks") for c in parse_relations(r.get(f, ""), where)
                     for a in c]
        provides = [a for c in parse_relations(r.get("Provides", ""), where) for a in c]
        return Package(r["Package"], r["Version"], r["Architecture"],
                       self.base_url + "/" + r["Filename"], r["SHA256"].lower(), int(r["Size"]),
                       deps, provides, conflicts, [], r["_source"],
                       PRIORITY_RANK.get(r.get("Priority", ""), 9))


def _release(repo: RepoConfig, suite: str) -> deb822.Release:
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
        body = data.split(b"\n\n", 1)[1]
        data = body.split(b"\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    release = deb822.Release(data.decode("utf-8"))
    if "SHA256" not in release:
        raise SmithError("%s has no SHA256 checksums; smith needs them to verify the indexes" % what)
    return release


def _records(repo: RepoConfig, suite: str, release: deb822.Release, path_dir: str,
             cache_dir: Optional[str]) -> Optional[List[Dict[str, str]]]:
    """The paragraphs of one Packages index (only FIELDS), or None if the Release lists none.
    With a cache dir, parsed records are kept as SHA256.records.json next to the verified
    index: parsing Debian's main/amd64 takes ~6 s, loading the records well under 1 s."""
    sums = {entry["name"]: entry for entry in release["SHA256"]}
    by_hash = release.get("Acquire-By-Hash", "no").lower() == "yes"
    for name, decompress in INDEX_NAMES:
        entry = sums.get(path_dir + "/" + name)
        if entry is None:
            continue
        cached = os.path.join(cache_dir, entry["sha256"] + ".records.json") if cache_dir else None
        if cached and os.path.exists(cached):
            kept = _cached_records(cached)
            if kept is not None:
                return kept  # else a damaged cache entry: rebuilt below
        # By-hash URLs do not change under us while the mirror updates.
        url = "%s/dists/%s/%s/%s" % (repo.url, suite, path_dir,
                                     "by-hash/SHA256/" + entry["sha256"] if by_hash else name)
        try:
            data = fetch_verified(url, entry["sha256"], int(entry["size"]), cache_dir)
        except SmithError:
            if not by_hash:
                raise
            url = "%s/dists/%s/%s/%s" % (repo.url, suite, path_dir, name)
            data = fetch_verified(url, entry["sha256"], int(entry["size"]), cache_dir)
        try:
            text = decompress(data)
        except (OSError, lzma.LZMAError, EOFError) as e:
            raise SmithError("cannot decompress %s: %s" % (url, e))
        records = [{k: para[k] for k in FIELDS if k in para}
                   for para in deb822.Packages.iter_paragraphs(io.BytesIO(text), use_apt_pkg=False,
                                                               fields=FIELDS)]
        if cached:
            with atomic_file(cached, "w", perms=0o600, encoding="utf-8") as f:
                json.dump(records, f)
        return records
    return None


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
        no_all = "Packages" in release.get("No-Support-for-Architecture-all", "").split()
        index_arches = [a for a in repo.architectures if a != "all"]
        if not no_all:
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
