"""The lockfile: canonical JSON (sorted keys, 2-space indent, trailing newline), so the same
inputs give the same bytes.

{
  "lockfile_version": 1,
  "repository": {"kind": "deb", "url": ..., "suites": [...], "components": [...], "trusted": false,
                 "architectures": [...]},     # rpm: kind, url, trusted, architectures
  "request": {"packages": ["redis-server"], "exclude": ["libc-bin"]},
  "excluded": {"libc-bin": ["libc6"]},              # skipped dependency -> who wanted it
  "packages": [{"name", "version", "architecture", "url", "sha256", "size",
                "depends": [names in this lock]}, ...]   # sorted by name, then architecture
}
Several architectures (repository "architectures": ["amd64", "arm64"]) are solved one by one
and their pins kept side by side: an entry belongs to the architecture it names; an
`Architecture: all` (rpm `noarch`) entry is shared and lists the architectures that use it in
"used_by" (absent: every architecture of the lock, which is what one-architecture files mean).
"depends" names packages of the same architecture's solution.
A build compares "request" and "repository" with its BUILD target to detect a stale lock.
This module is the one reader of the format: `smith lock|outdated|sbom` and the Pants rules
(smith/plugin/rules/util/packages.py) all go through `loads` / `read` and `pins`.
"""
import json
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from smith import safe_json
from smith.errors import SmithError
from smith.atomic import write_file
from smith.packages.fields import MAX_PACKAGE_BYTES, PACKAGE_NAME, SHA256_HEX, VERSION as VERSION_TEXT
from smith.platforms import SHARED_ARCHES

VERSION = 1
HINT = "regenerate it with smith lock"


class Pin(NamedTuple):
    """One locked package file."""

    name: str
    version: str
    architecture: str
    url: str
    sha256: str
    size: int


def request(packages: Iterable[str], exclude: Iterable[str]) -> Dict[str, Any]:
    """The "request" a lockfile records (and a BUILD target must match)."""
    return {"packages": list(packages), "exclude": sorted(set(exclude))}


def make(repo, packages: List[str], exclude: List[str], solution) -> Dict[str, Any]:
    """`repo`: a RepoConfig; `solution`: the solver's Solution."""
    return make_multi(repo, packages, exclude, [("", solution)])


def make_multi(repo, packages: List[str], exclude: List[str],
               solutions: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """One lock from (architecture, Solution) pairs, one per architecture; a single pair
    gives exactly the one-architecture format."""
    entries: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    excluded: Dict[str, set] = {}
    for arch, solution in solutions:
        for p in solution.packages.values():
            key = (p.name, p.arch, p.version)
            entry = entries.setdefault(key, {
                "name": p.name, "version": p.version, "architecture": p.arch, "url": p.url,
                "sha256": p.sha256, "size": p.size, "depends": set()})
            entry["depends"].update(solution.depends[p.name])
            if len(solutions) > 1 and p.arch in SHARED_ARCHES:
                entry.setdefault("used_by", []).append(arch)
        for name, wanted_by in solution.excluded.items():
            excluded.setdefault(name, set()).update(wanted_by)
    for entry in entries.values():
        entry["depends"] = sorted(entry["depends"])
        if entry.get("used_by") == [a for a, _ in solutions]:
            del entry["used_by"]  # shared by all: the default
    return {
        "lockfile_version": VERSION,
        "repository": repo.to_json(),
        "request": request(packages, exclude),
        "excluded": {k: sorted(v) for k, v in excluded.items()},
        "packages": [entries[k] for k in sorted(entries)],
    }


def dumps(lock: Dict[str, Any]) -> str:
    return json.dumps(lock, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write(path: str, lock: Dict[str, Any]) -> None:
    write_file(path, dumps(lock), parents=False)


def loads(data: bytes, what: str, hint: str = HINT) -> Dict[str, Any]:
    """Parse and check a lockfile's bytes; `what` names it in errors, `hint` says how to fix it."""
    try:
        lock = safe_json.loads(data, what)
    except SmithError as e:
        raise SmithError("%s; %s" % (e, hint)) from None
    if lock.get("lockfile_version") != VERSION:
        raise SmithError("%s is not a smith lockfile of version %d; %s" % (what, VERSION, hint))
    for key, kind in (("repository", dict), ("request", dict), ("packages", list)):
        if not isinstance(lock.get(key), kind):
            raise SmithError("%s has no valid %r; %s" % (what, key, hint))
    return lock


def read(path: str, hint: str = HINT) -> Dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(safe_json.MAX_JSON_BYTES + 1)
    except OSError as e:
        raise SmithError("cannot read lockfile %s: %s" % (path, e.strerror))
    return loads(data, "lockfile %s" % path, hint)


def architectures(lock: Dict[str, Any]) -> List[str]:
    """The architectures a lock was solved for (not the shared all/noarch)."""
    arches = lock["repository"].get("architectures")
    if not isinstance(arches, list) or not all(isinstance(a, str) for a in arches):
        return []
    return [a for a in arches if a not in SHARED_ARCHES]


def pins(lock: Dict[str, Any], what: str, hint: str = HINT,
         architecture: Optional[str] = None) -> Tuple[Pin, ...]:
    """The locked packages of a lockfile from `loads`/`read`, each entry checked; with
    `architecture`, only that architecture's (its own and the shared packages it uses)."""
    arches = architectures(lock)
    if architecture is not None and architecture not in arches:
        raise SmithError("%s has no pins for architecture %s (it was locked for %s); add %s to the "
                         "smith_repository's `architectures` and %s"
                         % (what, architecture, ", ".join(arches) or "none", architecture, hint))
    found = []
    for i, entry in enumerate(lock["packages"]):
        where = "%s: package entry %d" % (what, i)
        if not isinstance(entry, dict):
            raise SmithError("%s is not an object; %s" % (where, hint))
        try:
            pin = Pin(*(safe_json.field(entry, k, str, where) for k in ("name", "version", "architecture", "url", "sha256")),
                      safe_json.field(entry, "size", int, where))
            if not PACKAGE_NAME.match(pin.name):  # a path segment and an argument of a merge
                raise SmithError("%s: field 'name' %r is not a package name" % (where, pin.name[:100]))
            if not VERSION_TEXT.match(pin.version):
                raise SmithError("%s: field 'version' %r is not a version" % (where, pin.version[:100]))
            if not SHA256_HEX.match(pin.sha256):  # names the download in the cache
                raise SmithError("%s: field 'sha256' must be 64 lowercase hexadecimal digits" % where)
            if not 0 <= pin.size <= MAX_PACKAGE_BYTES:
                raise SmithError("%s: field 'size' must be a size in bytes (0 to %d)"
                                 % (where, MAX_PACKAGE_BYTES))
            used_by = entry.get("used_by", arches)
            if not isinstance(used_by, list) or not all(isinstance(a, str) for a in used_by):
                raise SmithError("%s: field 'used_by' must be a list of architectures" % where)
        except SmithError as e:
            raise SmithError("%s; %s" % (e, hint)) from None
        if architecture is None or pin.architecture == architecture or (
                pin.architecture in SHARED_ARCHES and architecture in used_by):
            found.append(pin)
    return tuple(found)
