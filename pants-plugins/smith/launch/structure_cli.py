"""`smith.launch structure --spec FILE`: check an image's files and config without running it
(paths present/absent, no shell, owners, no setuid, config metadata); see structure.py.
Needs no root."""
import argparse
import json
import sys
from typing import List

from smith.errors import SmithError
from smith.launch import structure
from smith.launch.service_spec import SpecError


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith-launch structure", description=__doc__, allow_abbrev=False)
    p.add_argument("--spec", required=True, metavar="FILE",
                   help="JSON description of the checks (see smith/launch/structure.py)")
    ns = p.parse_args(argv)
    try:
        with open(ns.spec, "rb") as f:
            data = json.loads(f.read(1 << 20).decode("utf-8"))
    except OSError as e:
        raise SmithError("%s: cannot read the spec (%s)" % (ns.spec, e.strerror))
    except (ValueError, UnicodeDecodeError) as e:
        raise SmithError("%s: not a JSON spec (%s)" % (ns.spec, e))
    try:
        spec = structure.validate(data)
    except SpecError as e:
        raise SmithError("%s: %s" % (ns.spec, e))
    return structure.run(spec, sys.stdout)
