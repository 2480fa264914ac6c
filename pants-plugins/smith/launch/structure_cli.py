"""`smith.launch structure --spec FILE`: check an image's files and config without running it
(paths present/absent, no shell, owners, no setuid, config metadata); see structure.py. Each
platform of an index image is checked.
Needs no root."""
import argparse
import json
import sys
from typing import List

from smith.errors import SmithError
from smith.launch import each_platform, emulation, structure
from smith.launch.service_spec import SpecError


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith-launch structure", description=__doc__, allow_abbrev=False)
    p.add_argument("--spec", required=True, metavar="FILE",
                   help="JSON description of the checks (see smith/launch/structure.py)")
    p.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]",
                   help="check only this platform of an index image; repeatable (default: every "
                        "platform of the image)")
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
    platforms, lacking = each_platform.selected(spec.layout, ns.platform)

    def one(platform, _label: str) -> int:  # nothing runs: every platform is checked here
        label = str(platform) if platform and (len(platforms) > 1 or not emulation.native(platform)) else ""
        return structure.run(spec, sys.stdout, platform, label)

    return each_platform.run_all(platforms, None, sys.stdout, one, lacking)
