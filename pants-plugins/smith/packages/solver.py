"""Dependency solver for deb and rpm: pick one version per package name so that every
dependency clause of every picked package is met and nothing conflicts.

Depth-first search with chronological backtracking: clauses are handled in the order
they were found (requests first, then each package's dependencies); a clause already met
by a picked package costs nothing (so cycles end there); otherwise its candidates are
tried best first (first alternative, highest version, then providers by priority), and a
dead end (no candidate, or all conflict) backs up to the last choice with options left.

`exclude`: excluded names are never picked. A clause whose alternatives can only be met
by excluded packages is skipped, and the excluded name is reported (it goes into the
lockfile's "excluded" list); when another, non-excluded alternative exists, it is used.
So excluding libc-bin drops it from libc6's closure, while excluding one provider of a
virtual package falls back to the next provider.
"""
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

from smith.errors import SmithError
from smith.packages.model import Package, Relation
from smith.packages.universe import Universe

MAX_STEPS = 100000

Clause = List[Relation]
Pending = Tuple[Clause, Tuple[str, ...]]   # the clause and the chain of "why" that led to it


@dataclass
class Solution:
    packages: Dict[str, Package]
    depends: Dict[str, List[str]]            # package -> names of picked packages it uses
    excluded: Dict[str, List[str]] = field(default_factory=dict)  # excluded name -> wanted by


def _clause_text(clause: Clause) -> str:
    return " | ".join(str(r) for r in clause)


class _Failure(Exception):
    pass


class Solver:
    def __init__(self, universe: Universe, exclude: List[str]) -> None:
        self.u = universe
        self.exclude = set(exclude)
        self.steps = 0
        self.first_failure: Optional[str] = None

    def _met(self, clause: Clause, chosen: Dict[str, Package]) -> Optional[Package]:
        for rel in clause:
            p = chosen.get(rel.name)
            if p is not None and self.u.matches(p, rel):
                return p
            for q in chosen.values():
                if q.name != rel.name and self.u.matches(q, rel):
                    return q
        return None

    def _conflict(self, p: Package, chosen: Dict[str, Package]) -> Optional[str]:
        for q in chosen.values():
            for rel in p.conflicts:
                if self.u.matches(q, rel):
                    return "%s conflicts with %s (picked)" % (p, q)
            for rel in q.conflicts:
                if self.u.matches(p, rel):
                    return "%s (picked) conflicts with %s" % (q, p)
        return None

    def _fail(self, chain: Tuple[str, ...], clause: Clause, reason: str) -> None:
        if self.first_failure is None:
            self.first_failure = " -> ".join(chain + ("needs " + _clause_text(clause),)) + ": " + reason

    def _search(self, chosen: Dict[str, Package], pending: List[Pending]) -> Dict[str, Package]:
        for i, (clause, chain) in enumerate(pending):
            if self._met(clause, chosen) is not None:
                continue
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise SmithError("dependency resolution gave up after %d steps; the first dead end "
                                 "was: %s; add constraints to the request or exclude packages"
                                 % (MAX_STEPS, self.first_failure))
            candidates: List[Package] = []
            blocked_by_exclude = any(rel.name in self.exclude for rel in clause)
            reasons: List[str] = []
            for rel in clause:
                for p in self.u.candidates(rel):
                    if p.name in self.exclude:
                        blocked_by_exclude = True
                    elif p.name in chosen:
                        reasons.append("%s is already picked as %s" % (p.name, chosen[p.name].version))
                    elif p not in candidates:
                        why = self._conflict(p, chosen)
                        if why:
                            reasons.append(why)
                        else:
                            candidates.append(p)
            if not candidates:
                if blocked_by_exclude and not reasons:
                    continue    # only excluded packages can meet it: skipped by request
                if not reasons and any(rel.name.startswith("(") for rel in clause):
                    reasons.append("this rich dependency is not supported by smith (only a flat "
                                   "`(a or b)` or `(a and b)`); exclude the package that needs it")
                if not reasons:
                    versions = ["%s %s" % (rel.name, p.version) for rel in clause
                                for p in self.u.by_name(rel.name)]
                    reasons.append("the repository has only %s" % ", ".join(versions) if versions
                                   else "no package in the repository provides it")
                self._fail(chain, clause, "; ".join(reasons))
                raise _Failure()
            rest = pending[i + 1:]
            for p in candidates:
                picked = dict(chosen)
                picked[p.name] = p
                why = chain + ("%s" % p,)
                try:
                    return self._search(picked, rest + [(c, why) for c in p.depends])
                except _Failure:
                    continue
            raise _Failure()
        return chosen

    def solve(self, requests: List[Clause]) -> Solution:
        for clause in requests:
            for rel in clause:
                if rel.name in self.exclude:
                    raise SmithError("package %s is both requested and excluded; remove it from "
                                     "one of the lists" % rel.name)
        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old_limit, 20000))
        try:
            chosen = self._search({}, [(c, ("requested",)) for c in requests])
        except _Failure:
            raise SmithError("cannot resolve the requested packages: %s" % self.first_failure)
        finally:
            sys.setrecursionlimit(old_limit)
        return self._explain(chosen)

    def _explain(self, chosen: Dict[str, Package]) -> Solution:
        depends: Dict[str, List[str]] = {}
        excluded: Dict[str, List[str]] = {}
        for name, p in chosen.items():
            used: Set[str] = set()
            for clause in p.depends:
                q = self._met(clause, chosen)
                if q is None:
                    for rel in clause:
                        names = {rel.name} | {c.name for c in self.u.candidates(rel)}
                        for n in sorted(names & self.exclude):
                            excluded.setdefault(n, []).append(name)
                elif q.name != name:
                    used.add(q.name)
            depends[name] = sorted(used)
        return Solution(chosen, depends, {k: sorted(set(v)) for k, v in excluded.items()})
