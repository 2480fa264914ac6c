"""The lockfile: canonical JSON (sorted keys, 2-space indent, trailing newline), so the same
inputs give the same bytes.

{
  "lockfile_version": 1,
  "repository": {"kind": "deb", "url": ..., "suites": [...], "components": [...], "trusted": false,
                 "architectures": [...]},     # rpm: kind, url, trusted, architectures
  "request": {"packages": ["redis-server"], "exclude": ["libc-bin"]},
  "excluded": {"libc-bin": ["libc6"]},              # skipped dependency -> who wanted it
  "packages": [{"name", "version", "architecture", "url", "sha256", "size",
                "depends": [names in this lock]}, ...]   # sorted by name
}
A build compares "request" with its BUILD target to detect a stale lock.
"""
import json
import os
import tempfile
from typing import Any, Dict, List

from smith.errors import SmithError
from smith.packages.repo_config import RepoConfig
from smith.packages.solver import Solution

VERSION = 1


def make(repo: RepoConfig, packages: List[str], exclude: List[str], solution: Solution) -> Dict[str, Any]:
    return {
        "lockfile_version": VERSION,
        "repository": repo.to_json(),
        "request": {"packages": list(packages), "exclude": sorted(set(exclude))},
        "excluded": solution.excluded,
        "packages": [
            {"name": p.name, "version": p.version, "architecture": p.arch, "url": p.url,
             "sha256": p.sha256, "size": p.size, "depends": solution.depends[p.name]}
            for p in sorted(solution.packages.values(), key=lambda p: p.name)
        ],
    }


def dumps(lock: Dict[str, Any]) -> str:
    return json.dumps(lock, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write(path: str, lock: Dict[str, Any]) -> None:
    write_text(path, dumps(lock))


def write_text(path: str, text: str) -> None:
    """Write atomically: a temp file in the same directory, renamed at the end."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            lock = json.load(f)
    except OSError as e:
        raise SmithError("cannot read lockfile %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise SmithError("lockfile %s is not valid JSON (%s); regenerate it with smith lock" % (path, e))
    if not isinstance(lock, dict) or lock.get("lockfile_version") != VERSION:
        raise SmithError("%s is not a smith lockfile of version %d; regenerate it with smith lock"
                         % (path, VERSION))
    for key in ("repository", "request", "packages"):
        if key not in lock:
            raise SmithError("lockfile %s has no %r; regenerate it with smith lock" % (path, key))
    return lock
