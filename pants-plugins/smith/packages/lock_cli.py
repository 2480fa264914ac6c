"""`smith lock`: resolve packages from a repository into a lockfile.

usage: smith lock --repo REPO.json --output LOCK.json [--exclude NAME]... [--cache-dir DIR] PKG...

REPO.json: see smith.packages.repo_config. PKG uses the repository's own syntax:
deb `redis-server`, `'redis-server (>= 5:7.0)'`, `'a | b'`; rpm `hello`, `'hello >= 1.0'`.
--cache-dir keeps verified metadata files by sha256 (safe to share between runs).
Each architecture the repository lists (besides the shared all/noarch) is solved on its own,
from its own and the shared packages only, so an arm64 dependency is never met by an amd64
package; the pins go into one lock. Writes LOCK.json atomically (see smith.packages.lockfile for the format) and prints one line
per locked package. Exit 0 on success, 1 with `smith lock: error: ...` when the repository
cannot be read or the request cannot be resolved (the message shows the failed chain).
"""
import argparse
import dataclasses
from typing import Any, Callable, List, Tuple

from smith.errors import SmithError
from smith.platforms import SHARED_ARCHES
from smith.packages import lockfile, repo_config
from smith.packages.metadata import load_universe, parse_request
from smith.packages.repo_config import RepoConfig
from smith.packages.solver import Solver
from smith.packages.universe import Universe
from smith.text import printable


def solve_each_architecture(repo: RepoConfig, requests, exclude: List[str],
                            load: Callable[[RepoConfig], Universe]) -> List[Tuple[str, Any]]:
    """(architecture, Solution) per architecture of `repo`; one architecture is solved as
    before (one universe of everything listed)."""
    own = [a for a in repo.architectures if a not in SHARED_ARCHES]
    if len(own) <= 1:
        return [(own[0] if own else "", Solver(load(repo), exclude).solve(requests))]
    shared = [a for a in repo.architectures if a in SHARED_ARCHES]
    out = []
    for arch in own:
        universe = load(dataclasses.replace(repo, architectures=[arch] + shared))
        try:
            out.append((arch, Solver(universe, exclude).solve(requests)))
        except SmithError as e:
            raise SmithError("architecture %s: %s" % (arch, e)) from None
    return out


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="smith lock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="repository description (JSON)")
    parser.add_argument("--output", required=True, help="lockfile to write")
    parser.add_argument("--exclude", action="append", default=[], help="package never installed")
    parser.add_argument("--cache-dir", help="directory for verified metadata, keyed by sha256")
    parser.add_argument("packages", nargs="+", help="requested packages")
    args = parser.parse_args(argv)
    repo = repo_config.load(args.repo)
    requests = [clause for text in args.packages for clause in parse_request(repo.kind, text)]
    solutions = solve_each_architecture(repo, requests, args.exclude,
                                        lambda r: load_universe(r, args.cache_dir))
    lock = lockfile.make_multi(repo, args.packages, args.exclude, solutions)
    lockfile.write(args.output, lock)
    for p in lock["packages"]:
        print(" ".join(printable(p[k]) for k in ("name", "version", "architecture")))  # the repository's words
    return 0
