#!/usr/bin/env python3
"""examples/pyapp benchmarks (issue 18), one command: python3 bench/pyapp.py [--runs N] [--only start|rebuild]

start   Start-to-ready of the full image with and without its build-time bytecode, paired
        (with, without, with, ...): the image is unpacked once; "without" is the same tree with
        every __pycache__/*.pyc removed (the image as it was before `python_bytecode=`). Each run
        is the entrypoint in a chroot as uid 10, on a read-only bind of the root with a tmpfs
        /run, in a private network namespace; from exec to the first answered GET /healthz.
        Also the image sizes (files, file bytes, compressed layers), and callgrind's instruction
        count of starting the interpreter and importing the app's modules (load-independent).
rebuild On a scratch copy of the repo (git archive of HEAD + this working tree's examples/pyapp):
        package the image, change one line of examples/pyapp/src, package again with
        --stats-log; prints which Processes ran (Pants logs "Starting:" only for processes it
        runs, not for cache hits) and the layer digests before and after.

Needs root (chroot, unshare). Builds the image with ./pants --no-pantsd first.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LAYOUT = "dist/examples.pyapp/image"
PORT = 8080  # from examples/pyapp/read/config.yaml; in a private netns, so nothing collides


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def pants(repo: str, *args: str) -> str:
    env = {"PATH": PATH, "HOME": os.path.expanduser("~"), "LC_ALL": "C.UTF-8"}
    p = subprocess.run(["./pants", "--no-pantsd", *args], cwd=repo, env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        sys.exit("./pants %s failed:\n%s" % (" ".join(args), p.stdout[-4000:]))
    return p.stdout


def smith(*args: str) -> None:
    env = {"PATH": PATH, "PYTHONPATH": os.path.join(REPO, "pants-plugins")}
    subprocess.run([sys.executable, "-m", "smith", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def image_config(layout: str) -> dict:
    index = json.load(open(os.path.join(layout, "index.json")))
    manifest = _blob(layout, index["manifests"][0]["digest"])
    return {"manifest": manifest, "config": _blob(layout, manifest["config"]["digest"])}


def _blob(layout: str, digest: str) -> dict:
    return json.load(open(os.path.join(layout, "blobs", *digest.split(":"))))


def tree_size(root: str) -> "tuple[int, int]":
    files = size = 0
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files += 1
                size += os.lstat(p).st_size
    return files, size


def drop_bytecode(root: str) -> int:
    n = 0
    for d, dirs, _ in os.walk(root):
        if "__pycache__" in dirs:
            shutil.rmtree(os.path.join(d, "__pycache__"))
            dirs.remove("__pycache__")
            n += 1
    return n


# Runs in a private mount+network namespace (unshare -m -n): read-only root, tmpfs /run,
# loopback up, the app as uid 10; prints the seconds from exec to the first answered /healthz.
_INNER = r"""
set -e
ip link set lo up
mount --bind "$ROOT" "$ROOT"; mount -o remount,bind,ro "$ROOT"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/run"; mount -t tmpfs -o mode=1777 tmpfs "$ROOT/write"
exec "$PY" -c '
import os, subprocess, sys, time, urllib.request
env = dict(a.split("=", 1) for a in os.environ["APP_ENV"].split("\n") if a)
t0 = time.monotonic()
p = subprocess.Popen(["chroot", "--userspec=10:10", os.environ["ROOT"], *sys.argv[1:]], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/healthz" % os.environ["PORT"], timeout=1).read()
        break
    except OSError:
        if p.poll() is not None:
            sys.exit("the app exited with %d before it was ready" % p.returncode)
        time.sleep(0.005)
print("%.4f" % (time.monotonic() - t0))
p.terminate(); p.wait()
' "$@"
"""


def start_to_ready(root: str, config: dict) -> float:
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    env = {"PATH": PATH, "ROOT": root, "PY": sys.executable, "PORT": str(PORT),
           "APP_ENV": "\n".join(config.get("Env") or [])}
    out = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "sh", "-c", _INNER,
                          "inner", *argv], env=env, check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    return float(out.strip().splitlines()[-1])


def bench_start(runs: int, build: bool, count: bool) -> None:
    if build:
        print("building", LAYOUT, "...", file=sys.stderr)
        pants(REPO, "package", "examples/pyapp:image")
    cfg = image_config(os.path.join(REPO, LAYOUT))
    work = tempfile.mkdtemp(prefix="pyapp-bench-")
    try:
        with_pyc, without = os.path.join(work, "with"), os.path.join(work, "without")
        smith("unpack", os.path.join(REPO, LAYOUT), "--output", with_pyc)
        smith("unpack", os.path.join(REPO, LAYOUT), "--output", without)
        dropped = drop_bytecode(without)
        (fw, bw), (fo, bo) = tree_size(with_pyc), tree_size(without)
        layers = cfg["manifest"]["layers"]
        print("image: %s (%d layers, %s compressed bytes)"
              % (LAYOUT, len(layers), "{:,}".format(sum(l["size"] for l in layers))))
        print("  with bytecode:    %d files, %s file bytes" % (fw, "{:,}".format(bw)))
        print("  without bytecode: %d files, %s file bytes (%d __pycache__ dirs removed)"
              % (fo, "{:,}".format(bo), dropped))
        times = {"with": [], "without": []}
        loads = [load()]
        start_to_ready(with_pyc, cfg["config"]["config"])  # warm the page cache, not counted
        start_to_ready(without, cfg["config"]["config"])
        for _ in range(runs):
            times["with"].append(start_to_ready(with_pyc, cfg["config"]["config"]))
            times["without"].append(start_to_ready(without, cfg["config"]["config"]))
        loads.append(load())
        print("start to ready, %d paired runs, load %s -> %s:" % (runs, loads[0], loads[1]))
        for k, v in times.items():
            print("  %-8s median %.3f s  [min %.3f, max %.3f]" % (k, statistics.median(v), min(v), max(v)))
        ratios = [a / b for a, b in zip(times["with"], times["without"])]
        print("  with/without per pair: median %.2fx [%.2f-%.2f]"
              % (statistics.median(ratios), min(ratios), max(ratios)))
        if count:
            print("instructions (callgrind, load-independent) to start python3.11 and import the app's "
                  "modules (pyapp.server, http.server, json, yaml):")
            ir = {k: import_instructions(root) for k, root in (("with", with_pyc), ("without", without))}
            for k, v in ir.items():
                print("  %-8s %s" % (k, "{:,}".format(v)))
            print("  with/without: %.2fx" % (ir["with"] / ir["without"]))
    finally:
        shutil.rmtree(work)


def import_instructions(root: str) -> int:
    """callgrind's instruction count of the image's python3.11 (run by the image's ld.so, so no
    chroot is needed) importing the app's modules from the unpacked tree."""
    deps = os.path.join(root, "opt/pyapp/.deps")
    path = [os.path.join(deps, d) for d in sorted(os.listdir(deps))] + [os.path.join(root, "opt/pyapp")]
    code = "import sys; sys.path[:0] = %r; import pyapp.server, http.server, json, yaml" % path
    python = os.path.join(root, "usr/bin/python3.11")
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            os.path.join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "--inhibit-cache",
            "--library-path", os.path.join(root, "usr/lib/x86_64-linux-gnu"), "--argv0", python,
            python, "-B", "-c", code]
    p = subprocess.run(argv, env={"PATH": PATH, "PYTHONHASHSEED": "0"}, stderr=subprocess.PIPE,
                       stdout=subprocess.DEVNULL, text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit("callgrind failed:\n" + p.stderr[-2000:])
    return int(m.group(1))


def layer_digests(repo: str) -> list:
    cfg = image_config(os.path.join(repo, LAYOUT))
    return [l["digest"] for l in cfg["manifest"]["layers"]]


# What marks each layer of examples/pyapp:image (the rest is the microcontainer skeleton).
_MARKS = [("python", "usr/bin/python3.11"), ("deps", "opt/pyapp/.deps/"), ("code", "opt/pyapp/pyapp/server.py"),
          ("conf", "read/config.yaml")]


def layer_name(repo: str, digest: str) -> str:
    with tarfile.open(os.path.join(repo, LAYOUT, "blobs", *digest.split(":"))) as t:
        names = t.getnames()
    for name, mark in _MARKS:
        if any(n.startswith(mark) for n in names):
            return name
    return "skeleton"


def bench_rebuild() -> None:
    work = tempfile.mkdtemp(prefix="pyapp-rebuild-")
    repo = os.path.join(work, "repo")
    try:
        os.mkdir(repo)
        archive = subprocess.run(["git", "-C", REPO, "archive", "HEAD"], check=True,
                                 stdout=subprocess.PIPE).stdout
        subprocess.run(["tar", "-x", "-C", repo], input=archive, check=True)
        pants(repo, "package", "examples/pyapp:image")
        before = layer_digests(repo)
        server = os.path.join(repo, "examples/pyapp/src/pyapp/server.py")
        text = open(server).read()
        # a new line every run, so no earlier run's cache entry stands in for the rebuild
        edited = 'server_version = "pyapp/%s"' % os.urandom(6).hex()
        open(server, "w").write(text.replace('server_version = "pyapp/1"', edited))
        t0 = time.monotonic()
        log = pants(repo, "--stats-log", "package", "examples/pyapp:image")
        took = time.monotonic() - t0
        after = layer_digests(repo)
        ran = re.findall(r"\[INFO\] Starting: (.+)", log)
        counters = dict(re.findall(r"^\s+(local_\w+|remote_cache_\w+): (\d+)$", log, re.M))
        print("app-only change (one line of examples/pyapp/src), load %s, %.1f s:" % (load(), took))
        print("  Processes that ran (%d):" % len(ran))
        for r in ran:
            print("    " + r)
        for k in ("local_process_total_time_run_ms", "local_cache_requests",
                  "local_cache_requests_cached", "local_execution_requests"):
            if k in counters:
                print("  %s: %s" % (k, counters[k]))
        for a, b in zip(before, after):
            print("  layer %-9s %s %s" % (layer_name(repo, b), "changed  " if a != b else "unchanged", b[:19]))
    finally:
        subprocess.run(["rm", "-rf", work])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7, help="paired start-to-ready runs (default 7)")
    p.add_argument("--only", choices=["start", "rebuild"])
    p.add_argument("--no-build", action="store_true", help="start: use the image already in dist/")
    p.add_argument("--no-count", action="store_true", help="start: skip the callgrind counts (~2 min)")
    args = p.parse_args()
    print("host %s, %s, load %s" % (os.uname().nodename, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load()))
    if args.only in (None, "start"):
        bench_start(args.runs, not args.no_build, not args.no_count)
    if args.only in (None, "rebuild"):
        bench_rebuild()


if __name__ == "__main__":
    main()
