"""Registry credentials from containers auth.json / docker config.json files.

Search order follows containers-auth.json(5): an explicit file, $REGISTRY_AUTH_FILE,
$XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, then
$DOCKER_CONFIG/config.json or ~/.docker/config.json. The first file with an entry wins.
Credential helpers (credsStore/credHelpers) are not run: smith never executes foreign programs.
"""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import base64
import binascii
import os
from collections import namedtuple

from smith import safe_json
from smith.errors import SmithError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Mapping, Optional

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                   "registry-1.docker.io")


Credentials = namedtuple("Credentials", "username password source")
Credentials.__doc__ = "username, password, source: the file they came from (named in errors)."


def candidate_files(env: Mapping[str, str], auth_file: Optional[str] = None) -> List[str]:
    home = env.get("HOME") or os.path.expanduser("~")
    files = []
    if auth_file:
        files.append(auth_file)
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        files.append(os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    files.append(os.path.join(home, ".config", "containers", "auth.json"))
    files.append(os.path.join(env.get("DOCKER_CONFIG") or os.path.join(home, ".docker"),
                              "config.json"))
    return files


def _normalise_key(key: str) -> str:
    """'https://host:5000/v1/' and 'host:5000' name the same registry."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            if key.endswith("/v1/") or key.endswith("/v2/"):
                key = key[:-4]
    return key.rstrip("/")


def _keys_for(registry: str, repository: str) -> List[str]:
    """Most specific first: host/ns/repo, host/ns, host (auth.json allows per-namespace entries)."""
    parts = repository.split("/")
    keys = ["/".join([registry] + parts[:n]) for n in range(len(parts), 0, -1)] + [registry]
    if registry == "docker.io":
        keys += [_normalise_key(k) for k in DOCKER_HUB_KEYS]
    return keys


def _decode(entry: dict, path: str, key: str) -> Optional[Credentials]:
    if entry.get("auth"):
        if not isinstance(entry["auth"], str):
            raise SmithError("%s: auths[%r].auth must be a string" % (path, key))
        try:
            raw = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise SmithError("%s: auths[%r].auth is not base64 of 'user:password'; "
                             "log in again or fix the entry" % (path, key))
        user, sep, password = raw.partition(":")
        if not sep:
            raise SmithError("%s: auths[%r].auth decodes to no 'user:password' pair" % (path, key))
        return Credentials(user, password, path)
    if entry.get("username") is not None and entry.get("password") is not None:
        if not (isinstance(entry["username"], str) and isinstance(entry["password"], str)):
            raise SmithError("%s: auths[%r]: username and password must be strings" % (path, key))
        return Credentials(entry["username"], entry["password"], path)
    return None


def load_from_file(path: str, registry: str, repository: str) -> Optional[Credentials]:
    if not os.path.exists(path):
        return None
    try:
        data = safe_json.load_file(path, expect=None)
    except SmithError as e:
        raise SmithError("%s; fix or remove the credentials file" % e)
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    normalised = {}
    for key, entry in auths.items():
        if isinstance(entry, dict):
            normalised.setdefault(_normalise_key(key), (key, entry))
    for key in _keys_for(registry, repository):
        if key in normalised:
            original, entry = normalised[key]
            creds = _decode(entry, path, original)
            if creds:
                return creds
    return None


def find_credentials(registry: str, repository: str, env: Optional[Mapping[str, str]] = None,
                     auth_file: Optional[str] = None) -> Optional[Credentials]:
    env = os.environ if env is None else env
    if auth_file and not os.path.isfile(auth_file):
        raise SmithError("credentials file %s does not exist" % auth_file)
    for path in candidate_files(env, auth_file):
        creds = load_from_file(path, registry, repository)
        if creds:
            return creds
    return None
