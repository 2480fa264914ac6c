"""Benchmark: median wall time of `RUNTIME run ID` for a busybox `true` bundle.

Compares the smith runtime (a zipapp built like dist/smith-runtime, run by /usr/bin/python3
-I -S) with runc and crun in the same run. Runs are interleaved (one of each per round) so
machine load hits all runtimes alike; CPU time (user+sys of the runtime and its children)
is reported too. crun runs in a private mount namespace with the cgroup2 mount hidden, which
it needs on this hybrid-cgroup host; the cost of that `unshare` wrapper is measured
separately and subtracted.

usage: PYTHONPATH=pants-plugins python3 bench/runtime_start.py [--runs N] [--out FILE]
"""
import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pants-plugins"))

from smith.runtime import testbundle  # noqa: E402
from smith.testutil.debian import require_tools, tool_env  # noqa: E402


def timed(cmd, env, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (cmd, proc.returncode, proc.stdout.decode()[-2000:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "runtime_start.md"))
    args = ap.parse_args()
    require_tools("runc", "crun", "busybox")
    env = tool_env()
    work = tempfile.mkdtemp(prefix="smith-bench-")
    try:
        app = testbundle.build_zipapp(os.path.join(work, "smith-runtime"))
        bundle = testbundle.bundle(os.path.join(work, "bundle"), args=["true"])
        roots = {n: os.path.join(work, "root-" + n) for n in ("smith", "runc", "crun")}
        hide = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'umount /sys/fs/cgroup/unified && exec "$@"', "sh"]
        runtimes = {
            "smith-runtime": lambda i: [app, "--root", roots["smith"], "run", "b%d" % i],
            "runc": lambda i: ["runc", "--root", roots["runc"], "run", "b%d" % i],
            "crun": lambda i: hide + ["crun", "--root", roots["crun"], "run", "b%d" % i],
            "(crun wrapper alone)": lambda i: hide + ["true"],
            "python3 -I -S -c pass": lambda i: ["/usr/bin/python3", "-I", "-S", "-c", "pass"],
        }
        walls = {n: [] for n in runtimes}
        cpus = {n: [] for n in runtimes}
        for i in range(-3, args.runs):  # 3 warm-up rounds
            for name, cmd in runtimes.items():
                w, c = timed(cmd(i + 1000), env, bundle)
                if i >= 0:
                    walls[name].append(w)
                    cpus[name].append(c)
        med = {n: statistics.median(v) for n, v in walls.items()}
        cpu = {n: statistics.median(v) for n, v in cpus.items()}
        med["crun"] -= med.pop("(crun wrapper alone)")
        cpu["crun"] -= cpu.pop("(crun wrapper alone)")
        lines = [
            "# Runtime start: `run` of a busybox `true` bundle",
            "",
            "Median of %d interleaved runs per runtime (after 3 warm-up rounds), measured by "
            "`bench/runtime_start.py`." % args.runs,
            "",
            "| runtime | median wall ms | ratio to runc | median CPU ms (user+sys) | CPU ratio to runc |",
            "|---|---|---|---|---|",
        ]
        for n in ("smith-runtime", "runc", "crun", "python3 -I -S -c pass"):
            lines.append("| %s | %.1f | %.2fx | %.1f | %.2fx |" % (n, med[n], med[n] / med["runc"], cpu[n], cpu[n] / cpu["runc"]))
        load = os.getloadavg()
        lines += [
            "",
            "Goal: smith-runtime <= 0.7x runc. `python3 -I -S -c pass` is the floor of any Python "
            "runtime: the interpreter starting and exiting.",
            "",
            "- date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "- machine: %s, %s, %d CPUs, kernel %s, load average during run %.2f %.2f %.2f" % (
                platform.node(), platform.machine(), os.cpu_count(), platform.release(), *load),
            "- smith-runtime: zipapp with .pyc (smith.runtime.testbundle.build_zipapp), `/usr/bin/python3 -I -S` (Python %s)" %
            subprocess.run(["/usr/bin/python3", "-c", "import platform;print(platform.python_version())"],
                           stdout=subprocess.PIPE, universal_newlines=True, env=env).stdout.strip(),
            "- runc: %s" % subprocess.run(["runc", "--version"], stdout=subprocess.PIPE, universal_newlines=True, env=env).stdout.splitlines()[0],
            "- crun: %s (in `unshare -m` with /sys/fs/cgroup/unified unmounted; wrapper time subtracted)" %
            subprocess.run(["crun", "--version"], stdout=subprocess.PIPE, universal_newlines=True, env=env).stdout.splitlines()[0],
        ]
        lines += [
            "",
            "Notes:",
            "- The host is shared (see load average); wall times stretch with load, CPU time much",
            "  less, so both are reported. Across runs on 2026-11-28 the wall ratio ranged 0.64x-0.75x.",
            "- Where the time goes for smith-runtime (measured 2026-11-28, quiet): ~7 ms the",
            "  interpreter itself (the `pass` row), ~4.8 ms imports (ours through zipimport ~3 ms,",
            "  os, and the C modules _json, _ctypes, resource), ~1 ms cgroups, the rest the same",
            "  kernel work runc does (namespaces, ~50 mounts) and the wait for `true`. It avoids",
            "  the RCU grace period that every cgroup.procs write costs (10-30 ms on this busy host;",
            "  runc pays it): init is cloned into its cgroup v2 directory (clone3",
            "  CLONE_INTO_CGROUP) and moves itself into the v1 hierarchies through `tasks`.",
            "- The zipapp boots with `python3 -I -S -c` (no runpy) and imports only what the",
            "  command needs (no json/argparse/ctypes/signal/subprocess/typing/socket packages:",
            "  `import socket` alone costs ~6 ms through enum and selectors, so `lo` is brought up",
            "  with _socket, _struct and fcntl).",
        ]
        text = "\n".join(lines) + "\n"
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out + ".tmp", "w") as f:
            f.write(text)
        os.rename(args.out + ".tmp", args.out)
        print(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
