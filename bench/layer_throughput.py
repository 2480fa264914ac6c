"""Layer writer throughput: `smith layer` vs `tar -c | gzip -6` on the same ~200 MB tree.

Usage: PYTHONPATH=pants-plugins python bench/layer_throughput.py [--size-mb 200] [--runs 3]

The tree (copies of /usr/lib and /usr/share files: shared libraries, Python modules, docs,
locale data) is built once under /tmp/smith-bench and reused. Both writers read it from the
page cache (one untimed warm-up run each); the median of N timed runs is reported, as MB/s of
input file bytes, and written to bench/results/layer_throughput.md.
"""
import argparse
import datetime
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PLUGINS = os.path.join(REPO, "pants-plugins")
WORK = "/tmp/smith-bench"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOURCES = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/python3", "/usr/share"]
MAX_FILE = 16 << 20  # skip single huge files so the mix stays "many ordinary files"


def build_tree(size_mb: int) -> str:
    """Copy a deterministic pseudo-random sample (by path hash) of the source files: a mix of
    many small files (docs, .py, locale) and some large ones (.so), like a real image."""
    tree = os.path.join(WORK, "tree-mix-%dmb" % size_mb)
    stamp = tree + ".done"
    if os.path.exists(stamp):
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    candidates = []
    for src in SOURCES:
        for dirpath, dirnames, filenames in os.walk(src):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path) and os.path.isfile(path):
                    size = os.path.getsize(path)
                    if size <= MAX_FILE:
                        candidates.append((hashlib.sha256(path.encode()).digest(), path, size))
    budget = size_mb << 20
    for _, path, size in sorted(candidates):
        if size > budget:
            continue
        dest = os.path.join(tree, path.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(path, dest)
        budget -= size
        if budget < 4096:
            break
    open(stamp, "w").close()
    return tree


def tree_bytes(tree: str):
    total = files = 0
    for dirpath, _, filenames in os.walk(tree):
        for n in filenames:
            total += os.path.getsize(os.path.join(dirpath, n))
            files += 1
    return total, files


CPU = {}  # writer -> CPU seconds (user+sys of the processes) per timed run


def timed(cmd, env, name=None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name:
        CPU.setdefault(name, []).append(after.ru_utime - before.ru_utime
                                        + after.ru_stime - before.ru_stime)
    return wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    tree = build_tree(args.size_mb)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    total, files = tree_bytes(tree)
    out = os.path.join(WORK, "out")
    os.makedirs(out, exist_ok=True)
    env = {"PATH": PATH, "PYTHONPATH": PLUGINS, "LC_ALL": "C"}
    ours = [sys.executable, "-m", "smith", "layer", "--output", os.path.join(out, "smith"),
            "--dir", "/=" + tree]
    gnu = ["bash", "-o", "pipefail", "-c", "tar -C %s -cf - . | gzip -6 > %s"
           % (tree, os.path.join(out, "gnu.tar.gz"))]
    times = {"smith layer": [], "tar -c | gzip -6": []}
    for name, cmd in (("smith layer", ours), ("tar -c | gzip -6", gnu)):
        timed(cmd, env)  # warm-up: page cache, imports
    for _ in range(args.runs):  # interleaved, so both see the same machine state
        times["smith layer"].append(timed(ours, env, "smith layer"))
        times["tar -c | gzip -6"].append(timed(gnu, env, "tar -c | gzip -6"))
    mb = total / 1e6
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: mb / v for k, v in med.items()}
    ratio = rate["smith layer"] / rate["tar -c | gzip -6"]
    sizes = {"smith layer": os.path.getsize(os.path.join(out, "smith", "layer.tar.gz")),
             "tar -c | gzip -6": os.path.getsize(os.path.join(out, "gnu.tar.gz"))}
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gzip_version = subprocess.run(["gzip", "--version"], env=env, stdout=subprocess.PIPE,
                                  text=True).stdout.splitlines()[0]
    lines = [
        "# Layer writer throughput",
        "",
        "Input: %s — %.1f MB in %d files (copies of %s)." % (tree, mb, files, ", ".join(SOURCES)),
        "Median of %d runs after one warm-up each (page cache warm), interleaved." % args.runs,
        "",
        "| writer | median s | MB/s (median) | best s | MB/s (best) | CPU s (median) | output MB "
        "| runs (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for k in times:
        lines.append("| %s | %.2f | %.1f | %.2f | %.1f | %.2f | %.1f | %s |" % (
            k.replace("|", "\\|"), med[k], rate[k], min(times[k]), mb / min(times[k]),
            statistics.median(CPU[k]), sizes[k] / 1e6, ", ".join("%.2f" % t for t in times[k])))
    lines += [
        "",
        "**Ratio ours/GNU: %.2fx on medians, %.2fx on best runs** (goal >= 0.9x)." % (
            ratio, min(times["tar -c | gzip -6"]) / min(times["smith layer"])),
        "CPU s = user+sys seconds of the writer's processes (less sensitive to other load; "
        "tar and gzip run as two processes, ours as one with two threads).",
        "Load average before the runs: %s (the machine is shared; spread between runs is "
        "noise from other work)." % load,
        "",
        "Machine: %s, %d CPUs, %s %s, Python %s, zlib %s, %s." % (
            cpu, os.cpu_count() or 0, platform.system(), platform.release(),
            platform.python_version(), zlib.ZLIB_RUNTIME_VERSION, gzip_version),
        "Date: %s." % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "layer_throughput.md"), "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
