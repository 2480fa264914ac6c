"""Benchmark: wall and CPU time of `RUNTIME run ID` for a busybox `true` bundle.

Compares the smith runtime (a zipapp built like dist/smith-runtime, run by /usr/bin/python3
-I -S) with runc and crun in the same run. Runs are paired: each round runs every runtime once
(the order rotating from round to round), so a drift in machine speed hits all of them alike,
and the ratio to runc is taken round by round; the tables give its median with min and max.
CPU time is user+sys of the runtime and every process it waited for (RUSAGE_CHILDREN).
crun runs in a private mount namespace with the cgroup2 mount hidden, which it needs on this
hybrid-cgroup host; the cost of that `unshare` wrapper is measured in the same round and
subtracted.

Two sets of rounds: as the host is, then with a CPU hog (a busy loop pinned to the last CPU)
running for the whole set (--no-load: the first set only); a third as the host is, with the OCI
runtime-tools default seccomp profile in the config. Then callgrind's instruction
counts of one `run` (load-independent): the runtime until it forks the container's init, init
from that fork to its exec, and the runtime's whole process.
--baseline REV also builds the runtime of git revision REV and measures it the same way, in
the same rounds (before/after).

usage: PYTHONPATH=pants-plugins python3 bench/runtime_start.py [--runs N] [--no-load]
           [--baseline REV] [--out FILE]
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
from smith.testutil.seccomp_profiles import RUNTIME_TOOLS_DEFAULT  # noqa: E402 (the profile as data)

WRAPPER = "(crun wrapper alone)"
PASS = "python3 -I -S -c pass"
SHOWN = ["smith-runtime", "runc", "crun", PASS]


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


def baseline_zipapp(rev: str, work: str) -> str:
    """The runtime's zipapp as git revision rev builds it (its own sources and zipapp writer)."""
    tree = os.path.join(work, "baseline-src")
    os.makedirs(tree)
    repo = os.path.dirname(HERE)
    archive = subprocess.run(["git", "-C", repo, "archive", rev, "pants-plugins/smith"], stdout=subprocess.PIPE,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    app = os.path.join(work, "smith-runtime-" + rev)
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "try:\n    from smith.testutil.runtime_bundle import build_zipapp\n"
            "except ImportError:\n    from smith.runtime.testbundle import build_zipapp\n"
            "build_zipapp(sys.argv[2])\n")
    subprocess.run([sys.executable, "-c", code, os.path.join(tree, "pants-plugins"), app], check=True)
    return app


def instructions(app: str, work: str, tag: str) -> tuple:
    """callgrind instruction counts of one `run`: (runtime until init is forked, init from the
    fork to its exec, the runtime's whole process). Init's counts are dumped before it execs
    into a directory bind-mounted at the same path in the container; the config has no rlimits
    (valgrind lowers the fd limit, so RLIMIT_NOFILE 1024 could not be set under it)."""
    out = os.path.join(work, "cg-" + tag)
    os.makedirs(out)
    rootfs = os.path.join(work, "rootfs-cg")
    if not os.path.isdir(rootfs):
        shutil.copytree(testbundle.busybox_rootfs(), rootfs, symlinks=True)
    os.makedirs(rootfs + out)

    def edit(config):
        config["process"].pop("rlimits", None)
        config["root"]["path"] = rootfs
        config["mounts"].append({"destination": out, "source": out, "type": "bind", "options": ["rbind"]})
    bundle = testbundle.bundle(os.path.join(work, "bundle-cg-" + tag), args=["true"], edit=edit)
    subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=PyOS_AfterFork_Child",
                    "--dump-before=execve", "--callgrind-out-file=%s/cg.%%p" % out,
                    app, "--root", os.path.join(work, "root-cg"), "run", "cg-" + tag],
                   cwd=bundle, env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def total(name):
        with open(os.path.join(out, name)) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("summary:"))
    runtime = [n for n in os.listdir(out) if not n.startswith("cg.1.") and n != "cg.1"]
    return total("cg.1.1"), total("cg.1.2"), total(runtime[0])


def instruction_table(counts: dict) -> list:
    lines = ["## Instructions of one `run` (callgrind; the machine's load does not change them)", "",
             "| build | runtime until init is forked | init: fork to exec | runtime process, whole |",
             "|---|---:|---:|---:|"]
    for name, (fork, init, whole) in counts.items():
        lines.append("| %s | %.2fM | %.2fM | %.2fM |" % (name, fork / 1e6, init / 1e6, whole / 1e6))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-load", action="store_true",
                    help="skip the second set, with a busy loop pinned to the last CPU")
    ap.add_argument("--baseline", metavar="REV", help="also measure the runtime of this git revision")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "runtime_start.md"))
    args = ap.parse_args()
    require_tools("runc", "crun", "busybox", "valgrind")
    env = tool_env()
    work = tempfile.mkdtemp(prefix="smith-bench-")
    load_before = os.getloadavg()
    try:
        app = testbundle.build_zipapp(os.path.join(work, "smith-runtime"))
        base = baseline_zipapp(args.baseline, work) if args.baseline else None
        bundle = testbundle.bundle(os.path.join(work, "bundle"), args=["true"])
        roots = {n: os.path.join(work, "root-" + n) for n in ("smith", "base", "runc", "crun")}
        hide = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'umount /sys/fs/cgroup/unified && exec "$@"', "sh"]
        runtimes = {
            "smith-runtime": lambda i: [app, "--root", roots["smith"], "run", "b%s" % i],
            "runc": lambda i: ["runc", "--root", roots["runc"], "run", "b%s" % i],
            "crun": lambda i: hide + ["crun", "--root", roots["crun"], "run", "b%s" % i],
            WRAPPER: lambda i: hide + ["true"],
            PASS: lambda i: ["/usr/bin/python3", "-I", "-S", "-c", "pass"],
        }
        if base:
            name = "smith-runtime @%s" % args.baseline
            runtimes[name] = lambda i: [base, "--root", roots["base"], "run", "b%s" % i]
            SHOWN.insert(1, name)
        quiet = rounds(runtimes, args.runs, env, bundle, "q")
        loaded = None
        if not args.no_load:
            cpu = (os.cpu_count() or 1) - 1
            h = hog(cpu)
            try:
                time.sleep(0.5)  # let it settle on its CPU
                loaded = rounds(runtimes, args.runs, env, bundle, "l")
            finally:
                h.kill()
                h.wait()
        # The same bundle with the OCI runtime-tools default seccomp profile (deny by default),
        # as the host is: the runtimes' roots keep what they keep between runs (smith-runtime's
        # compiled-program cache), as they would in use.
        seccomp_bundle = testbundle.bundle(os.path.join(work, "bundle-seccomp"), args=["true"],
                                           edit=lambda c: c["linux"].update(seccomp=RUNTIME_TOOLS_DEFAULT))
        with_seccomp = rounds(runtimes, args.runs, env, seccomp_bundle, "s")
        load_after = os.getloadavg()
        counts = {"this checkout": instructions(app, work, "head")}
        if base:
            counts["@" + args.baseline] = instructions(base, work, "base")
        lines = ["# Runtime start: `run` of a busybox `true` bundle", "",
                 "%d paired rounds per table (each round runs every runtime once, in rotating order, after "
                 "3 warm-up rounds), measured by `bench/runtime_start.py`. Ratios are taken round by round."
                 % args.runs, ""]
        lines += table(quiet, "## No load added by the benchmark (the host's own load: see the load average below)")
        if loaded:
            lines += [""] + table(loaded, "## Loaded: a busy loop pinned to CPU %d for the whole set"
                                  % ((os.cpu_count() or 1) - 1))
        lines += [""] + table(with_seccomp, "## With the runtime-tools default seccomp profile (no load added; "
                              "after the warm-up rounds)")
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
                " (the hog adds about 1 while it runs)" if not args.no_load else ""),
            "- commit: %s" % commit(),
            "- smith-runtime: zipapp with .pyc (smith.testutil.runtime_bundle.build_zipapp), `/usr/bin/python3 -I -S` "
            "(Python %s)" % py,
            "- runc: %s" % ver["runc"],
            "- crun: %s (in `unshare -m` with /sys/fs/cgroup/unified unmounted; the wrapper's time in the "
            "same round subtracted)" % ver["crun"],
        ]
        lines += [""] + instruction_table(counts)
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
