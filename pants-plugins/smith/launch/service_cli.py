"""`smith.launch service --spec FILE`: a service test (see service.py and service_spec.py):
start the image detached, wait until it is ready, run its checks inside its network namespace,
stop it (and restart it on the same /write), printing PASS/FAIL with the time of each phase."""
import argparse
import json
import sys
from typing import List

from smith.errors import SmithError
from smith.launch import container, each_platform, service, service_spec
from smith.launch.container import Settings


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith-launch service", description=__doc__, allow_abbrev=False)
    p.add_argument("--spec", required=True, metavar="FILE",
                   help="JSON description of the test (see smith/launch/service_spec.py)")
    p.add_argument("--runtime", default="runc", metavar="PATH",
                   help="OCI runtime with runc's CLI (default: runc on PATH)")
    p.add_argument("--store", default="/var/lib/smith", metavar="DIR", help="the launcher's store")
    p.add_argument("--id-base", type=int, default=100000, metavar="N")
    p.add_argument("--ids-per-container", type=int, default=65536, metavar="N")
    p.add_argument("--max-containers", type=int, default=4096, metavar="N")
    p.add_argument("-v", "--verbose", action="store_true", help="say what the launcher does, on stderr")
    each_platform.add_options(p, many=True)
    ns = p.parse_args(argv)
    try:
        with open(ns.spec, "rb") as f:
            raw = f.read(1 << 20)
        data = json.loads(raw.decode("utf-8"))
    except OSError as e:
        raise SmithError("%s: cannot read the spec (%s)" % (ns.spec, e.strerror))
    except (ValueError, UnicodeDecodeError) as e:
        raise SmithError("%s: not a JSON spec (%s)" % (ns.spec, e))
    try:
        spec = service_spec.validate(data)
    except service_spec.SpecError as e:
        raise SmithError("%s: %s" % (ns.spec, e))
    container.require_root()
    settings = Settings(store=ns.store, runtime=ns.runtime, id_base=ns.id_base,
                        id_size=ns.ids_per_container, id_count=ns.max_containers, verbose=ns.verbose)
    platforms, lacking = each_platform.selected(spec.layout, ns.platform)
    return each_platform.run_all(platforms, ns.emulation, sys.stdout,
                                 lambda platform, label: service.run(spec, settings, sys.stdout, platform, label),
                                 lacking)
