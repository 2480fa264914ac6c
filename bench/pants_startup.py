#!/usr/bin/env python3
"""What the smith backend adds to every Pants start without pantsd (issue 16): one command.

    bench/pants_startup.py [--pairs N] [--warmup N]

Runs `./pants --no-pantsd --no-verify-config --version` with the repository's backends (A: Pants'
python backend + smith.plugin) and with `--backend-packages="['pants.backend.python']"` (B: Pants
alone), in turn A B A B ..., and prints for each run the wall and CPU (user + sys) seconds of the
whole process and the CPU seconds Pants spent building its rule graphs (timed in-process around
the engine's `scheduler_create` by a sitecustomize put on PYTHONPATH for these runs only; Pants
builds two graphs, the second one holds the backends' rules). Then the medians [min-max] of A, B
and of A-B taken pair by pair, with the load average before and after, the date and the commit;
the same report goes to bench/results/pants_startup.md. On a busy host quote the CPU columns:
wall time there measures the neighbours.

First, once each, A and B with `-ltrace`: the rule-graph solver logs its progress ("rule_graph
monomorphize: iteration N") every 1000 steps; the last N of each graph is a count of the solver's
work that does not depend on the load (it varies by ~0.5% between runs: hash order).
"""
import re
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = ["./pants", "--no-pantsd", "--no-verify-config"]
A = BASE + ["--version"]
B = BASE + ["--backend-packages=['pants.backend.python']", "--version"]

# Loaded by the Pants venv's python at start-up (site imports `sitecustomize` from PYTHONPATH).
SITECUSTOMIZE = '''
import atexit, os, time
from pants.engine.internals import native_engine
_create, _cpu = native_engine.scheduler_create, []
def _timed(*args, **kwargs):
    start = time.process_time()
    try:
        return _create(*args, **kwargs)
    finally:
        _cpu.append(time.process_time() - start)
native_engine.scheduler_create = _timed
@atexit.register
def _write():
    with open(os.environ["SMITH_BENCH_GRAPH_CPU"], "w") as f:
        f.write(" ".join("%.3f" % c for c in _cpu))
'''


def run(argv, hook_dir):
    out = os.path.join(hook_dir, "graphs")
    env = dict(os.environ, PYTHONPATH=hook_dir, SMITH_BENCH_GRAPH_CPU=out)
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if status != 0:
        sys.exit("bench/pants_startup.py: %s failed:\n%s" % (" ".join(argv), stderr[-2000:]))
    with open(out) as f:
        graphs = [float(x) for x in f.read().split()]
    os.unlink(out)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "graph": sum(graphs)}


def solver_steps(argv):
    """Solver iterations (to the 1000) of each rule graph Pants builds, from its trace log."""
    proc = subprocess.run(argv[:-1] + ["-ltrace", argv[-1]], cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0:
        sys.exit("bench/pants_startup.py: %s -ltrace failed:\n%s" % (" ".join(argv), proc.stderr[-2000:]))
    graphs, last = [], 0
    for n in re.findall(r"rule_graph monomorphize: iteration (\d+):", proc.stderr):
        n = int(n)
        if n < last:  # a new graph starts counting again
            graphs.append(last)
        last = n
    return graphs + [last]


def spread(values):
    return "%.2f [%.2f-%.2f]" % (statistics.median(values), min(values), max(values))


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def report(line=""):
    print(line, flush=True)
    LINES.append(line)


LINES = []


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1, help="pairs run first and not counted")
    args = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, stdout=subprocess.PIPE,
                            universal_newlines=True).stdout.strip()
    load_before = open("/proc/loadavg").read().split()[:3]
    report("Pants start-up, no pantsd: A = smith backend on, B = python backend only; %s, commit %s, "
          "%d CPUs, load before %s" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
                                        commit, os.cpu_count(), " ".join(load_before)))
    steps = {name: solver_steps(argv) for name, argv in (("A", A), ("B", B))}
    report("rule-graph solver iterations per graph: A %s  B %s  A-B (second graph) %d" % (
        " + ".join(str(n) for n in steps["A"]), " + ".join(str(n) for n in steps["B"]),
        steps["A"][-1] - steps["B"][-1]))
    report("%-5s %-4s %8s %8s %10s" % ("pair", "run", "wall s", "cpu s", "graph cpu s"))
    rows = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="smith-bench-") as hook_dir:
        with open(os.path.join(hook_dir, "sitecustomize.py"), "w") as f:
            f.write(SITECUSTOMIZE)
        for i in range(args.warmup + args.pairs):
            for name, argv in (("A", A), ("B", B)):
                r = run(argv, hook_dir)
                counted = i >= args.warmup
                if counted:
                    rows[name].append(r)
                report("%-5s %-4s %8.2f %8.2f %10.2f" % (i - args.warmup + 1 if counted else "warm", name,
                                                        r["wall"], r["cpu"], r["graph"]))
    report()
    report("load after %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    for key, label in (("wall", "wall s"), ("cpu", "cpu s"), ("graph", "rule-graph cpu s")):
        a = [r[key] for r in rows["A"]]
        b = [r[key] for r in rows["B"]]
        report("%-17s A %s  B %s  A-B %s  A/B %s" % (
            label, spread(a), spread(b), spread([x - y for x, y in zip(a, b)]),
            spread([x / y for x, y in zip(a, b)])))
    out = os.path.join(REPO, "bench", "results", "pants_startup.md")
    with open(out, "w") as f:
        f.write("# Pants start-up with and without the smith backend\n\n`bench/pants_startup.py --pairs %d "
                "--warmup %d` on %s:\n\n```\n%s\n```\n" % (args.pairs, args.warmup, cpu_model(), "\n".join(LINES)))


if __name__ == "__main__":
    main()
