"""Benchmark: wall and CPU time of `RUNTIME run ID` for a busybox `true` bundle.

Compares the smith runtime (a zipapp built like dist/smith-runtime, run by /usr/bin/python3
-I -S) with runc and crun in the same run. Runs are paired: each round runs every runtime once
(the order rotating from round to round), so a drift in machine speed hits all of them alike,
and the ratio to runc is taken round by round; the tables give its median with min and max.
CPU time is user+sys of the runtime and every process it waited for (RUSAGE_CHILDREN).
crun runs in a private mount namespace with the cgroup2 mount hidden, which it needs on this
hybrid-cgroup host; the cost of that `unshare` wrapper is measured in the same round and
subtracted.

--load adds a second set of rounds with a CPU hog (a busy loop pinned to the last CPU) running
for the whole set: the rows under load.

usage: PYTHONPATH=pants-plugins python3 bench/runtime_start.py [--runs N] [--load] [--out FILE]
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

from smith.testutil import runtime_bundle as testbundle  # noqa: E402
from smith.testutil.debian import require_tools, tool_env  # noqa: E402

WRAPPER = "(crun wrapper alone)"
PASS = "python3 -I -S -c pass"
SHOWN = ("smith-runtime", "runc", "crun", PASS)


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


def rounds(runtimes, runs, env, cwd, tag):
    """{name: [(wall ms, cpu ms), ...]} over `runs` rounds after 3 warm-up rounds."""
    names = list(runtimes)
    got = {n: [] for n in names}
    for i in range(-3, runs):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            w, c = timed(runtimes[name]("%s%d" % (tag, i + 1000)), env, cwd)
            if i >= 0:
                got[name].append((w, c))
    # crun: minus its wrapper, round by round
    got["crun"] = [(w - ww, c - wc) for (w, c), (ww, wc) in zip(got["crun"], got.pop(WRAPPER))]
    return got


def spread(values, fmt):
    return ("%s [%s-%s]" % (fmt, fmt, fmt)) % (statistics.median(values), min(values), max(values))


def table(got, title):
    lines = [
        title, "",
        "| runtime | median wall ms | wall [min-max] | wall ratio to runc, median [min-max] "
        "| median CPU ms | CPU [min-max] | CPU ratio to runc, median [min-max] |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    runc = got["runc"]
    for n in SHOWN:
        walls = [w for w, _ in got[n]]
        cpus = [c for _, c in got[n]]
        wr = [w / rw for (w, _), (rw, _) in zip(got[n], runc)]
        cr = [c / rc for (_, c), (_, rc) in zip(got[n], runc) if rc > 0]
        lines.append("| %s | %.1f | %.1f-%.1f | %s | %.1f | %.1f-%.1f | %s |" % (
            n, statistics.median(walls), min(walls), max(walls), spread(wr, "%.2fx"),
            statistics.median(cpus), min(cpus), max(cpus), spread(cr, "%.2fx") if cr else "-"))
    return lines


def hog(cpu: int) -> subprocess.Popen:
    code = "import os\nos.sched_setaffinity(0, {%d})\nwhile True:\n    pass\n" % cpu
    return subprocess.Popen([sys.executable, "-c", code])


def commit() -> str:
    repo = os.path.dirname(HERE)
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "pants-plugins/smith/runtime"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    except OSError:
        return "unknown"
    return head + (" (with uncommitted changes in pants-plugins/smith/runtime)" if dirty.strip() else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--load", action="store_true",
                    help="also measure with a busy loop pinned to the last CPU (the loaded rows)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "runtime_start.md"))
    args = ap.parse_args()
    require_tools("runc", "crun", "busybox")
    env = tool_env()
    work = tempfile.mkdtemp(prefix="smith-bench-")
    load_before = os.getloadavg()
    try:
        app = testbundle.build_zipapp(os.path.join(work, "smith-runtime"))
        bundle = testbundle.bundle(os.path.join(work, "bundle"), args=["true"])
        roots = {n: os.path.join(work, "root-" + n) for n in ("smith", "runc", "crun")}
        hide = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'umount /sys/fs/cgroup/unified && exec "$@"', "sh"]
        runtimes = {
            "smith-runtime": lambda i: [app, "--root", roots["smith"], "run", "b%s" % i],
            "runc": lambda i: ["runc", "--root", roots["runc"], "run", "b%s" % i],
            "crun": lambda i: hide + ["crun", "--root", roots["crun"], "run", "b%s" % i],
            WRAPPER: lambda i: hide + ["true"],
            PASS: lambda i: ["/usr/bin/python3", "-I", "-S", "-c", "pass"],
        }
        quiet = rounds(runtimes, args.runs, env, bundle, "q")
        loaded = None
        if args.load:
            cpu = (os.cpu_count() or 1) - 1
            h = hog(cpu)
            try:
                time.sleep(0.5)  # let it settle on its CPU
                loaded = rounds(runtimes, args.runs, env, bundle, "l")
            finally:
                h.kill()
                h.wait()
        load_after = os.getloadavg()
        lines = ["# Runtime start: `run` of a busybox `true` bundle", "",
                 "%d paired rounds per table (each round runs every runtime once, in rotating order, after "
                 "3 warm-up rounds), measured by `bench/runtime_start.py`. Ratios are taken round by round."
                 % args.runs, ""]
        lines += table(quiet, "## No load added by the benchmark (the host's own load: see the load average below)")
        if loaded:
            lines += [""] + table(loaded, "## Loaded: a busy loop pinned to CPU %d for the whole set"
                                  % ((os.cpu_count() or 1) - 1))
        py = subprocess.run(["/usr/bin/python3", "-c", "import platform;print(platform.python_version())"],
                            stdout=subprocess.PIPE, universal_newlines=True, env=env).stdout.strip()
        ver = {n: subprocess.run([n, "--version"], stdout=subprocess.PIPE, universal_newlines=True,
                                 env=env).stdout.splitlines()[0] for n in ("runc", "crun")}
        lines += [
            "",
            "Goal: smith-runtime wall <= 0.7x runc at the median on a quiet host, CPU <= 1.0x runc. "
            "`python3 -I -S -c pass` is the floor of any Python runtime: the interpreter starting and exiting.",
            "",
            "- date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "- machine: %s, %s, %d CPUs, kernel %s" % (platform.node(), platform.machine(), os.cpu_count(),
                                                       platform.release()),
            "- load average (1/5/15 min): %.2f %.2f %.2f before, %.2f %.2f %.2f after%s" % (
                *load_before, *load_after,
                " (the hog adds about 1 while it runs)" if args.load else ""),
            "- commit: %s" % commit(),
            "- smith-runtime: zipapp with .pyc (smith.testutil.runtime_bundle.build_zipapp), `/usr/bin/python3 -I -S` "
            "(Python %s)" % py,
            "- runc: %s" % ver["runc"],
            "- crun: %s (in `unshare -m` with /sys/fs/cgroup/unified unmounted; the wrapper's time in the "
            "same round subtracted)" % ver["crun"],
        ]
        text = "\n".join(lines) + "\n"
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".tmp", "w") as f:
            f.write(text)
        os.rename(args.out + ".tmp", args.out)
        print(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
