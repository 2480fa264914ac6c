"""Fetch repository files over http(s) or file:// with urllib, and verify them.

Metadata may be cached in a content-addressed directory (files named by their sha256),
so a second `smith lock` against the same Release/repomd reuses the big indexes.
"""
import hashlib
import os
import urllib.error
import urllib.request
from typing import Optional

from smith.errors import SmithError
from smith.atomic import write_file

TIMEOUT = 120


def fetch(url: str) -> bytes:
    """Return the body of URL; any failure is a SmithError naming the URL."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise SmithError("fetching %s failed: HTTP %d %s; check the repository url, suite and "
                         "component" % (url, e.code, e.reason))
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise SmithError("fetching %s failed: %s; check the repository url and that it is "
                         "reachable" % (url, reason))


def check_digest(data: bytes, algorithm: str, expected: str, size: Optional[int], what: str) -> None:
    """Raise a SmithError when DATA does not have the expected size and digest."""
    if size is not None and len(data) != size:
        raise SmithError("%s has %d bytes but %d were expected: the file is truncated or changed; "
                         "re-run the lock or fix the repository" % (what, len(data), size))
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected.lower():
        raise SmithError("%s has %s %s but %s was expected: the file is corrupt or the metadata "
                         "is stale; re-run the lock or fix the repository"
                         % (what, algorithm, actual, expected))


def fetch_verified(url: str, sha256: str, size: Optional[int], cache_dir: Optional[str]) -> bytes:
    """Fetch URL whose sha256 is known, through the content-addressed cache if one is given."""
    cached = os.path.join(cache_dir, sha256.lower()) if cache_dir else None
    if cached and os.path.exists(cached):
        with open(cached, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() == sha256.lower():
            return data
    data = fetch(url)
    check_digest(data, "sha256", sha256, size, url)
    if cached:
        write_file(cached, data, perms=0o600)
    return data
