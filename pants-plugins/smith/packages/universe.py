"""All packages of a repository, indexed by name and by what they provide.

Packages are built lazily from raw metadata records (Debian's main/amd64 has ~64k), so
only the few hundred the solver visits get their relations parsed.
"""
from typing import Dict, List, Tuple

from smith.packages.model import COMPARE, Package, Relation, satisfies, sort_key


class Universe:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.compare = COMPARE[kind]
        self._raw: Dict[str, List[object]] = {}
        self._built: Dict[str, List[Package]] = {}
        self._provided: Dict[str, List[Tuple[str, int]]] = {}

    # Filled by the metadata readers --------------------------------------------------
    def add(self, name: str, record: object, provided_names: List[str]) -> None:
        records = self._raw.setdefault(name, [])
        for p in provided_names:
            self._provided.setdefault(p, []).append((name, len(records)))
        records.append(record)
        self._built.pop(name, None)

    def build(self, record: object) -> Package:  # overridden per kind
        raise NotImplementedError

    # Used by the solver --------------------------------------------------------------
    def names(self) -> List[str]:
        return sorted(self._raw)

    def by_name(self, name: str) -> List[Package]:
        """Every version of NAME, highest first, one per (version, arch)."""
        if name not in self._built:
            seen, out = set(), []
            for record in self._raw.get(name, []):
                p = self.build(record)
                if (p.version, p.arch) not in seen:
                    seen.add((p.version, p.arch))
                    out.append(p)
            key = sort_key(self.compare)
            out.sort(key=lambda p: (key(p.version), p.arch), reverse=True)
            self._built[name] = out
        return self._built[name]

    def providers(self, name: str) -> List[Tuple[Package, Relation]]:
        """(package, its Provides entry) for every package that provides NAME."""
        out = []
        for owner in sorted({o for o, _ in self._provided.get(name, [])}):
            for p in self.by_name(owner):
                for rel in p.provides:
                    if rel.name == name:
                        out.append((p, rel))
                        break
        out.sort(key=lambda pr: pr[0].rank)  # stable: by name within a rank
        return out

    def candidates(self, rel: Relation) -> List[Package]:
        """Packages that satisfy REL, best first: the real package by version, then providers."""
        out = [p for p in self.by_name(rel.name) if satisfies(self.compare, p.version, rel.op, rel.version)]
        for p, prov in self.providers(rel.name):
            if p.name == rel.name:
                continue
            if self._provide_matches(prov, rel) and p not in out:
                out.append(p)
        return out

    def _provide_matches(self, prov: Relation, rel: Relation) -> bool:
        if rel.op is None:
            return True
        if prov.op is None or prov.version is None:
            # Debian: an unversioned Provides never meets a versioned dependency.
            # rpm: an unversioned Provides meets any version.
            return self.kind == "rpm"
        return satisfies(self.compare, prov.version, rel.op, rel.version)

    def matches(self, p: Package, rel: Relation) -> bool:
        """Does package P (by name or a Provides) meet REL? Used for Conflicts."""
        if p.name == rel.name and satisfies(self.compare, p.version, rel.op, rel.version):
            return True
        return any(prov.name == rel.name and self._provide_matches(prov, rel) for prov in p.provides)
