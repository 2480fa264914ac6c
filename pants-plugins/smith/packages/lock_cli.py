"""`smith lock`: resolve packages from a repository into a lockfile.

usage: smith lock --repo REPO.json --output LOCK.json [--exclude NAME]... [--cache-dir DIR] PKG...

REPO.json: see smith.packages.repo_config. PKG uses the repository's own syntax:
deb `redis-server`, `'redis-server (>= 5:7.0)'`, `'a | b'`; rpm `hello`, `'hello >= 1.0'`.
--cache-dir keeps verified metadata files by sha256 (safe to share between runs).
Writes LOCK.json atomically (see smith.packages.lockfile for the format) and prints one line
per locked package. Exit 0 on success, 1 with `smith lock: error: ...` when the repository
cannot be read or the request cannot be resolved (the message shows the failed chain).
"""
import argparse
from typing import List

from smith.packages import lockfile, repo_config
from smith.packages.metadata import load_universe, parse_request
from smith.packages.solver import Solver


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
    universe = load_universe(repo, args.cache_dir)
    solution = Solver(universe, args.exclude).solve(requests)
    lockfile.write(args.output, lockfile.make(repo, args.packages, args.exclude, solution))
    for p in sorted(solution.packages.values(), key=lambda p: p.name):
        print("%s %s %s" % (p.name, p.version, p.arch))
    return 0
