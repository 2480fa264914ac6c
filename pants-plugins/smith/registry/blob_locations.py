"""Where blobs were seen: which repositories of a registry hold a digest, so a push can ask the
registry to mount a blob from there (`POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<other>`)
instead of uploading it again.

Every blob this client pushed (uploaded, found or mounted) or pulled is noted for its registry and
repository, in memory for the run and, if a cache file is given, across runs: a small JSON file
(default `$XDG_CACHE_HOME/smith/blob-locations.json`, else `~/.cache/smith/...`; `SMITH_BLOB_CACHE`
names another file, `off` turns it off). It is only a hint: a mount the registry declines (it
answers 202 and opens an upload instead of 201) or a stale entry costs one request, then the blob
is uploaded as usual. The file is read through safe_json with a size cap, and every entry is
validated (a digest, a repository name) before it is used; an unreadable file is ignored."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import json
import os
import re
import threading

from smith import safe_json
from smith.errors import SmithError
from smith.atomic import write_file
from smith.registry.digests import is_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

ENV = "SMITH_BLOB_CACHE"
MAX_REPOS = 4  # repositories remembered per blob, most recent first
MAX_BLOBS = 20000  # blobs remembered per file (oldest dropped first)
MAX_FILE = 8 << 20
_REPO = re.compile(r"\A[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                   r"[a-z0-9]+)*)*\Z")
_HOST = re.compile(r"\A[A-Za-z0-9.\-\[\]:]{1,255}\Z")


def default_cache_file() -> Optional[str]:
    env = os.environ.get(ENV)
    if env is not None:
        return None if env in ("", "off", "0") else env
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else None)
    return os.path.join(base, "smith", "blob-locations.json") if base else None


def _valid(registry: object, repo: object, digest: object) -> bool:
    return (isinstance(registry, str) and bool(_HOST.match(registry)) and isinstance(repo, str)
            and len(repo) <= 255 and bool(_REPO.match(repo)) and is_digest(digest))


class BlobLocations:
    def __init__(self, cache_file: Optional[str] = None) -> None:
        self.cache_file = cache_file
        self._lock = threading.Lock()
        # "registry digest" -> repositories, most recent first (dict order = age, oldest first)
        self._seen: Dict[str, List[str]] = {}
        self._new: Dict[str, List[str]] = {}
        if cache_file:
            self._seen = self._load(cache_file)

    @staticmethod
    def _load(path: str) -> Dict[str, List[str]]:
        try:
            data = safe_json.load_file(path, "blob location cache %s" % path, max_bytes=MAX_FILE)
        except (OSError, SmithError):
            return {}
        blobs = data.get("blobs") if isinstance(data, dict) else None
        found: Dict[str, List[str]] = {}
        if not isinstance(blobs, dict):
            return found
        for key, repos in blobs.items():
            registry, _, digest = key.partition(" ")
            if isinstance(repos, list):
                ok = [r for r in repos[:MAX_REPOS] if _valid(registry, r, digest)]
                if ok:
                    found[key] = ok
        return found

    def seen(self, registry: str, repo: str, digest: str) -> None:
        if not _valid(registry, repo, digest):
            return
        key = "%s %s" % (registry, digest)
        with self._lock:
            for table in (self._seen, self._new):
                repos = [repo] + [r for r in table.pop(key, []) if r != repo]
                table[key] = repos[:MAX_REPOS]

    def candidates(self, registry: str, repo: str, digest: str) -> List[str]:
        """Other repositories of `registry` known to hold `digest`, most recent first."""
        with self._lock:
            return [r for r in self._seen.get("%s %s" % (registry, digest), []) if r != repo]

    def save(self) -> None:
        """Merge what this run saw into the cache file (best effort: a hint is never an error)."""
        if not self.cache_file:
            return
        with self._lock:
            new = dict(self._new)
        if not new:
            return
        path = self.cache_file
        merged = self._load(path)
        for key, repos in new.items():
            repos = repos + [r for r in merged.pop(key, []) if r not in repos]
            merged[key] = repos[:MAX_REPOS]
        keys = list(merged)[-MAX_BLOBS:]
        body = json.dumps({"version": 1, "blobs": {k: merged[k] for k in keys}},
                          separators=(",", ":"))
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
            write_file(path, body, perms=0o600)
        except OSError:
            return
        with self._lock:
            self._new = {}
