"""Load-independent cost of one small `smith push` that mounts every blob (a re-push into a new
repository), as dist/smith starts it: valgrind callgrind instruction counts (all threads), for two
checkouts in turn (A B A B), against one local docker-registry.

Usage: python3 bench/push_instructions.py CHECKOUT_A CHECKOUT_B [--layout DIR] [--runs 2]
(layout default: the small image bench/throughput.py builds, /tmp/smith-bench/throughput/img-small)
Needs valgrind and docker-registry."""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pants-plugins"))
from smith.testutil.local_registry import LocalRegistry  # noqa: E402

WORK = "/tmp/smith-bench/push-instructions"


def push(checkout, layout, dest, cache, callgrind):
    boot = "s=__import__('sys');s.path[0]=%r;__import__('smith.__main__')" % os.path.join(
        os.path.abspath(checkout), "pants-plugins")
    cmd = ["/usr/bin/python3", "-I", "-S", "-c", boot, "push", layout + ":latest", dest]
    if callgrind:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "SMITH_BLOB_CACHE": cache, "HOME": WORK})
    if p.returncode != 0 or (callgrind and "mounted" not in p.stderr):
        sys.exit("push failed: %s" % p.stderr[-2000:])
    found = re.search(r"Collected : (\d+)", p.stderr)
    return int(found.group(1)) if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--layout", default="/tmp/smith-bench/throughput/img-small")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    reg = LocalRegistry(os.path.join(WORK, "registry"))
    try:
        cache = os.path.join(WORK, "blob-locations.json")
        push(args.b, args.layout, "%s/first:v1" % reg.host, cache, False)
        counts = {args.a: [], args.b: []}
        for n in range(args.runs):
            for side in (args.a, args.b):
                counts[side].append(push(side, args.layout, "%s/re-%d-%d:v1" % (
                    reg.host, n, len(counts[side]) + (0 if side == args.a else 100)), cache, True))
        for side, c in counts.items():
            print("%s: %s M instructions" % (side, ", ".join("%.1f" % (x / 1e6) for x in c)))
    finally:
        reg.stop()


if __name__ == "__main__":
    main()
