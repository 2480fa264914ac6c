"""Compare a lockfile's pins with the repository's metadata now."""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from smith.packages.universe import Universe

ANY_ARCH = {"deb": "all", "rpm": "noarch"}


@dataclass
class Pin:
    name: str
    locked: str
    available: Optional[str]    # newest version in the repository now (None: name gone)
    gone: bool                  # the locked version's file is no longer listed
    architecture: str = ""      # the pin's architecture (each architecture is reported apart)

    @property
    def outdated(self) -> bool:
        return self.gone or self.available != self.locked


def check(lock: Dict[str, Any], universe: Universe) -> List[Pin]:
    """Every pin that has a newer version, or whose pinned version is gone."""
    out = []
    for p in lock["packages"]:
        arches = {p["architecture"], ANY_ARCH[universe.kind]}
        versions = [q for q in universe.by_name(p["name"]) if q.arch in arches]
        newest = versions[0].version if versions else None
        gone = not any(q.version == p["version"] and q.sha256 == p["sha256"] for q in versions)
        if newest is not None and universe.compare(newest, p["version"]) <= 0:
            newest = p["version"]       # never report a downgrade as "available"
        pin = Pin(p["name"], p["version"], newest, gone, p["architecture"])
        if pin.outdated:
            out.append(pin)
    return out
