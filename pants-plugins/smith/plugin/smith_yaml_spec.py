"""Oracle smith's `smith.yaml` -> the smith-for-Pants targets that build the same image.

Pants-free, so it is unit-tested on its own; rules/smith_yaml.py turns the result into targets.
`type: oci` becomes a smith_minimize of `package` (an image path or address); a package build
(`type` rpm/deb or absent) becomes smith_packages -> smith_binary -> smith_layer -> smith_image.
"""
import re
from typing import Any, Dict, List, NamedTuple, Optional

import yaml

from smith.errors import SmithError

SUPPORTED = ("type", "package", "paths", "excludes", "nss", "root", "user", "entrypoint", "cmd",
             "dir", "env", "labels", "ports")
# Known smith fields we cannot build yet: say so instead of silently ignoring them.
UNSUPPORTED = {
    "parent": "layering on a parent image is not supported yet; use a smith_image with `base`",
    "groups": "supplementary groups are not supported yet",
    "mounts": "extra mounts are not supported yet; the image has /read, /write and /run volumes",
}
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


class Generated(NamedTuple):
    alias: str  # target type
    name: str  # generated name: ADDRESS#name
    fields: Dict[str, Any]


def load(text: str, where: str) -> Dict[str, Any]:
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SmithError("%s is not valid YAML: %s" % (where, e))
    if not isinstance(spec, dict):
        raise SmithError("%s must be a YAML mapping of smith fields (package, paths, cmd, ...)" % where)
    for key in spec:
        if key in UNSUPPORTED:
            raise SmithError("%s: field `%s`: %s" % (where, key, UNSUPPORTED[key]))
        if key not in SUPPORTED:
            raise SmithError("%s: unknown field `%s`; smith.yaml fields are %s"
                             % (where, key, ", ".join(SUPPORTED)))
    return spec


def _strings(spec: Dict[str, Any], key: str, where: str) -> Optional[List[str]]:
    v = spec.get(key)
    if v is None:
        return None
    if isinstance(v, (str, int)):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, (str, int)) for x in v):
        raise SmithError("%s: field `%s` must be a list of strings" % (where, key))
    return [str(x) for x in v]


def _mapping(spec: Dict[str, Any], key: str, where: str) -> Optional[Dict[str, str]]:
    v = spec.get(key)
    if v is None:
        return None
    if isinstance(v, list):  # smith writes env as [K=V, ...]
        out = {}
        for item in v:
            if not isinstance(item, str) or "=" not in item or item.startswith("="):
                raise SmithError("%s: field `%s`: %r is not NAME=VALUE" % (where, key, item))
            k, val = item.split("=", 1)
            out[k] = val
        return out
    if not isinstance(v, dict):
        raise SmithError("%s: field `%s` must be a mapping or a list of NAME=VALUE" % (where, key))
    return {str(k): "" if val is None else str(val) for k, val in v.items()}


def _bool(spec: Dict[str, Any], key: str, where: str) -> bool:
    v = spec.get(key, False)
    if not isinstance(v, bool):
        raise SmithError("%s: field `%s` must be true or false" % (where, key))
    return v


def user_of(spec: Dict[str, Any], where: str) -> str:
    """NAME:UID:GID of the image user: root: true -> root:0:0; `user: NAME` keeps smith's 10:10."""
    if _bool(spec, "root", where):
        if spec.get("user") not in (None, "root"):
            raise SmithError("%s: fields `root: true` and `user` contradict; keep one" % where)
        return "root:0:0"
    user = spec.get("user")
    if user is None:
        return "smith:10:10"
    user = str(user)
    parts = user.split(":")
    if len(parts) == 3 and _USER.match(parts[0]) and parts[1].isdigit() and parts[2].isdigit():
        return user
    if len(parts) == 1 and _USER.match(user):
        return "%s:10:10" % user
    raise SmithError("%s: field `user` %r must be a user name or NAME:UID:GID" % (where, user))


def generate(spec: Dict[str, Any], where: str, address_of, repository: str,
             resolve: str, lockfile: Optional[str]) -> List[Generated]:
    """The targets for one smith.yaml. `address_of(name)` spells the address of a sibling."""
    kind = str(spec.get("type") or "package")
    package = spec.get("package")
    if not isinstance(package, str) or not package:
        raise SmithError("%s: field `package` is required: the package to install, or with "
                         "`type: oci` the image to minimize" % where)
    paths = _strings(spec, "paths", where) or []
    excludes = _strings(spec, "excludes", where) or []
    entrypoint = _strings(spec, "entrypoint", where)
    cmd = _strings(spec, "cmd", where)
    env = _mapping(spec, "env", where)
    labels = _mapping(spec, "labels", where)
    ports = _strings(spec, "ports", where)
    nss = _bool(spec, "nss", where)
    user = user_of(spec, where)
    workdir = spec.get("dir")
    if workdir is not None and not isinstance(workdir, str):
        raise SmithError("%s: field `dir` must be a path" % where)
    config = {"entrypoint": entrypoint, "cmd": cmd, "env": env, "labels": labels,
              "exposed_ports": ports, "workdir": workdir}
    config = {k: v for k, v in config.items() if v is not None}

    if kind == "oci":
        fields = dict(config, image=package, paths=paths, excludes=excludes, nss=nss, user=user)
        return [Generated("smith_minimize", "image", fields)]
    if kind not in ("package", "rpm", "deb"):
        raise SmithError("%s: field `type` %r is not supported; use `oci`, or leave it out for a "
                         "package build (rpm or deb, from the smith_yaml's `repository`)" % (where, kind))
    program = (entrypoint or cmd or [None])[0] or (paths[0] if paths else None)
    if not program or not program.startswith("/"):
        raise SmithError("%s: a package build needs the program as an absolute path: the first "
                         "item of `entrypoint` or `cmd`, or of `paths`" % where)
    packages = {"repository": repository, "packages": [package], "resolve": resolve}
    if lockfile:
        packages["lockfile"] = lockfile
    binary = {"path": program, "root": [address_of("packages")], "nss": nss, "user": user,
              "paths": [p for p in paths if p != program]}
    layer = {"dependencies": [address_of("binary")], "excludes": excludes}
    image = dict(config, layers=[address_of("layer")], user=user)
    return [Generated("smith_packages", "packages", packages),
            Generated("smith_binary", "binary", binary),
            Generated("smith_layer", "layer", layer),
            Generated("smith_image", "image", image)]
