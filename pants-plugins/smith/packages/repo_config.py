"""The repository description (REPO.json) that `smith lock` and `smith outdated` read.

deb: {"kind": "deb", "url": "http://deb.debian.org/debian", "suites": ["bookworm"],
      "components": ["main"], "architectures": ["amd64"], "keyring": null, "trusted": false}
     keyring null = /usr/share/keyrings/debian-archive-keyring.gpg; trusted = skip gpgv (apt's
     [trusted=yes]). Architecture "all" is always accepted besides the listed ones.
rpm: {"kind": "rpm", "url": "http://127.0.0.1:8080/repo", "architectures": ["x86_64", "noarch"],
      "keyring": null, "trusted": true}
     rpm metadata is checked by the repomd.xml checksums; with a keyring, repomd.xml.asc is
     checked with gpgv too.
The same object is stored as "repository" in the lockfile, so outdated needs only the lock.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from smith import safe_json
from smith.errors import SmithError

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MAX_REPO_FILE_BYTES = 1 << 20  # a description is a few hundred bytes


@dataclass
class RepoConfig:
    kind: str
    url: str
    suites: List[str] = field(default_factory=list)
    components: List[str] = field(default_factory=list)
    architectures: List[str] = field(default_factory=list)
    keyring: Optional[str] = None
    trusted: bool = False

    def to_json(self) -> Dict[str, Any]:
        # The keyring path is machine-specific and not recorded; trusted is.
        out: Dict[str, Any] = {"kind": self.kind, "url": self.url, "trusted": self.trusted,
                               "architectures": list(self.architectures)}
        if self.kind == "deb":
            out["suites"] = list(self.suites)
            out["components"] = list(self.components)
        return out


def _strings(raw: Dict[str, Any], key: str, default: List[str], where: str) -> List[str]:
    value = raw.get(key, default)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise SmithError("%s: field %r must be a non-empty list of strings" % (where, key))
    return list(value)


def from_dict(raw: Any, where: str) -> RepoConfig:
    if not isinstance(raw, dict):
        raise SmithError("%s: the repository must be a JSON object" % where)
    known = {"kind", "url", "suites", "components", "architectures", "keyring", "trusted"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SmithError("%s: unknown repository fields %s (known: %s)"
                         % (where, unknown, sorted(known)))
    kind = raw.get("kind")
    if kind not in ("deb", "rpm"):
        raise SmithError("%s: field 'kind' must be \"deb\" or \"rpm\", not %r" % (where, kind))
    url = raw.get("url")
    if not isinstance(url, str) or "://" not in url:
        raise SmithError("%s: field 'url' must be an http(s):// or file:// URL, not %r" % (where, url))
    keyring = raw.get("keyring")
    if keyring is not None and not isinstance(keyring, str):
        raise SmithError("%s: field 'keyring' must be a path or null" % where)
    trusted = raw.get("trusted", kind == "rpm" and keyring is None)
    if not isinstance(trusted, bool):
        raise SmithError("%s: field 'trusted' must be true or false" % where)
    if kind == "deb":
        return RepoConfig(kind, url.rstrip("/"), _strings(raw, "suites", [], where),
                          _strings(raw, "components", ["main"], where),
                          _strings(raw, "architectures", ["amd64"], where),
                          keyring if keyring or trusted else DEBIAN_KEYRING, trusted)
    return RepoConfig(kind, url.rstrip("/"), [], [],
                      _strings(raw, "architectures", ["x86_64", "noarch"], where), keyring, trusted)


def load(path: str) -> RepoConfig:
    """A repository file (written from a smith_repository, or by hand): bounded, then checked
    field by field by from_dict."""
    try:
        raw = safe_json.load_file(path, max_bytes=MAX_REPO_FILE_BYTES, expect=dict)
    except SmithError as e:
        raise SmithError('%s; a repository file is one JSON object such as {"kind": "deb", '
                         '"url": "http://deb.debian.org/debian", "suites": ["bookworm"]} '
                         '(docs/packages.md)' % e) from None
    return from_dict(raw, path)
