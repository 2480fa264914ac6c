"""`smith outdated`: report pins of lockfiles that have newer versions in their repository.

usage: smith outdated [--check] [--json OUT.json] [--keyring PATH] [--trusted]
                      [--cache-dir DIR] LOCK.json...

Each lock's own "repository" is read again (deb: signature checked with --keyring, default
the Debian archive keyring, unless the lock's repository says trusted or --trusted is given). Prints one line per outdated pin:
  LOCK: NAME LOCKED -> AVAILABLE
  LOCK: NAME LOCKED -> AVAILABLE (the locked file is gone from the repository)
or `LOCK: up to date`; a lock of several architectures names each pin NAME:ARCH.
--json writes [{"lock", "name", "architecture", "locked", "available", "gone"}, ...].
Exit 0; with --check, exit 3 when anything is outdated or gone (1 is kept for errors).
"""
import argparse
import json
import sys
from typing import Any, Dict, List

from smith.atomic import write_file
from smith.packages import lockfile, repo_config
from smith.packages.metadata import load_universe
from smith.packages.outdated import check
from smith.text import printable

OUTDATED_EXIT = 3


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="smith outdated", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 3 when anything is outdated")
    parser.add_argument("--json", help="also write the report as JSON")
    parser.add_argument("--keyring", help="keyring for deb signatures (default: Debian's)")
    parser.add_argument("--trusted", action="store_true", help="do not check signatures")
    parser.add_argument("--cache-dir", help="directory for verified metadata, keyed by sha256")
    parser.add_argument("locks", nargs="+", help="lockfiles written by smith lock")
    args = parser.parse_args(argv)
    universes: Dict[str, Any] = {}
    rows: List[Dict[str, Any]] = []
    for path in args.locks:
        lock = lockfile.read(path)
        raw = dict(lock["repository"])
        if args.trusted:
            raw["trusted"] = True
        if args.keyring:
            raw["keyring"] = args.keyring
        repo = repo_config.from_dict(raw, "%s (repository)" % path)
        key = json.dumps(raw, sort_keys=True)
        if key not in universes:
            universes[key] = load_universe(repo, args.cache_dir)
        pins = check(lock, universes[key])
        several = len(lockfile.architectures(lock)) > 1
        for pin in pins:
            gone = " (the locked file is gone from the repository)" if pin.gone else ""
            name = "%s:%s" % (pin.name, pin.architecture) if several else pin.name
            print("%s: %s %s -> %s%s" % (path, printable(name), printable(pin.locked),  # the repository's words
                                         printable(pin.available or "(none)"), gone))
            rows.append({"lock": path, "name": pin.name, "architecture": pin.architecture,
                         "locked": pin.locked, "available": pin.available, "gone": pin.gone})
        if not pins:
            print("%s: up to date" % path)
    if args.json:
        write_file(args.json, json.dumps(rows, sort_keys=True, indent=2) + "\n", parents=False)
    if args.check and rows:
        print("smith outdated: %d pins are outdated; regenerate the lockfiles" % len(rows),
              file=sys.stderr)
        return OUTDATED_EXIT
    return 0
