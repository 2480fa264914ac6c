"""Fetch repository files over http(s) or file:// with urllib, and verify them.

Metadata may be cached in a content-addressed directory (files named by their sha256),
so a second `smith lock` against the same Release/repomd reuses the big indexes.
"""
import hashlib
import io
import os
import urllib.error
import urllib.request
from typing import Optional

from smith.errors import SmithError
from smith.atomic import write_file
from smith.packages.fields import MAX_PACKAGE_BYTES, SHA256_HEX
from smith.text import printable

TIMEOUT = 120
MAX_FETCH_BYTES = 64 << 20  # a Release, InRelease, repomd.xml or signature: Debian's is ~150 KB


def fetch(url: str, max_bytes: int = MAX_FETCH_BYTES) -> bytes:
    """Return the body of URL, refused past max_bytes; any failure is a SmithError naming the URL."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            data = _read_capped(response, max_bytes + 1)
    except urllib.error.HTTPError as e:
        raise SmithError("fetching %s failed: HTTP %d %s; check the repository url, suite and "
                         "component" % (url, e.code, e.reason))
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise SmithError("fetching %s failed: %s; check the repository url and that it is "
                         "reachable" % (url, reason))
    if len(data) > max_bytes:
        raise SmithError("fetching %s: more than the %d bytes expected; the file is not what the "
                         "repository's metadata says, fix the repository" % (url, max_bytes))
    return data


def _read_capped(response, limit: int) -> bytes:
    """Up to `limit` bytes, read in chunks (read(n) may allocate n bytes up front) into a BytesIO,
    whose getvalue() hands over its buffer: no second copy of a 9 MB index at the peak."""
    out = io.BytesIO()
    while out.tell() < limit:
        chunk = response.read(min(1 << 16, limit - out.tell()))
        if not chunk:
            break
        out.write(chunk)
    return out.getvalue()


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
    if not SHA256_HEX.match(sha256.lower()):  # it names a file of the cache
        raise SmithError("%s: the expected sha256 %r is not 64 hexadecimal digits; re-run the lock"
                         % (url, printable(sha256, 100)))
    cached = os.path.join(cache_dir, sha256.lower()) if cache_dir else None
    if cached and os.path.exists(cached):
        with open(cached, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() == sha256.lower():
            return data
    data = fetch(url, MAX_PACKAGE_BYTES if size is None else size)
    check_digest(data, "sha256", sha256, size, url)
    if cached:
        write_file(cached, data, perms=0o600)
    return data
