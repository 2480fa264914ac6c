"""Throughput where images get big (issue 20), in one run, as paired ratios:

- layer writer (gzip) vs `tar | gzip -6` and vs `tar | pigz -6` on a >= 200 MB tree;
- zstd layer writer vs `tar | zstd -3 -T0`;
- `smith push` / `smith pull` vs `skopeo copy` against a local docker-registry (distribution) on
  127.0.0.1, for a >= 100 MB multi-layer image and a small (~13 MB) one: push into a fresh
  registry (nothing there), re-push into a new repository of the same registry (both tools know
  where the blobs are: smith from its blob-location cache, skopeo from its blob-info cache, so both
  mount), pull into an empty directory.

Usage: bench/throughput.py [--runs 5] [--tree-mb 200] [--only writers|transfers]
  (SMITH_BENCH_PYTHON: the interpreter of the layer writers, default this one; it needs
  zstandard. push/pull run the way dist/smith starts them: /usr/bin/python3 -I -S, stdlib only,
  the sources of this checkout; SMITH_BENCH_CLI_PYTHON changes that interpreter.)

Every row is the median of N paired runs (A B A B ..., after an untimed warm-up of each), the
ratio taken pair by pair, with its min and max. Writers are compared by throughput (peer's time /
smith's time: above 1 means smith is faster); transfers by time (smith's time / skopeo's: below 1
means smith is faster). Whole processes are timed, start-up included; besides wall time each side's
CPU seconds (user + sys of the processes it waited for; the registry's own work is in neither) are
compared the same way, as they depend less on other load. Written to bench/results/throughput.md. Needs docker-registry, skopeo, pigz, zstd (Debian packages).
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PLUGINS = os.path.join(REPO, "pants-plugins")
sys.path.insert(0, HERE)
from layer_throughput import build_tree, tree_bytes  # noqa: E402

WORK = "/tmp/smith-bench/throughput"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PYTHON = os.environ.get("SMITH_BENCH_PYTHON") or sys.executable
CLI_PYTHON = os.environ.get("SMITH_BENCH_CLI_PYTHON") or "/usr/bin/python3"
# dist/smith's boot line (smith/zipapp_cli.py), with this checkout's sources instead of the archive
CLI_BOOT = "s=__import__('sys');s.path[0]=%r;__import__('smith.__main__')" % PLUGINS


def log(msg):
    print("[throughput %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def env(**extra):
    e = {"PATH": PATH, "PYTHONPATH": PLUGINS, "LC_ALL": "C", "HOME": os.path.join(WORK, "home")}
    e.update(extra)
    return e


def run(cmd, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=kw.pop("env", env()), **kw)
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(cmd), proc.returncode,
                                                  proc.stderr[-3000:]))
    return proc.stdout


def smith(*args):
    return [PYTHON, "-m", "smith", *args]


def smith_cli(*args):
    """smith as dist/smith runs it: -I -S (no site, no environment), stdlib only."""
    return [CLI_PYTHON, "-I", "-S", "-c", CLI_BOOT, *args]


CPU = []  # CPU seconds of each timed() call, in call order


def timed(cmd, e=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run(cmd, env=e or env())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def paired(runs, a, b, setup=None):
    """a(i), b(i) time one process each (through timed()); setup(i) (untimed) runs before
    each. One warm-up pair. Returns (wall A, wall B, CPU A, CPU B)."""
    ta, tb, ca, cb = [], [], [], []
    for i in range(runs + 1):
        if setup:
            setup(i, "a")
        x = a(i)
        cx = CPU[-1]
        if setup:
            setup(i, "b")
        y = b(i)
        cy = CPU[-1]
        if i:
            ta.append(x)
            tb.append(y)
            ca.append(cx)
            cb.append(cy)
    return ta, tb, ca, cb


def summary(ta, tb, ca, cb, throughput):
    def ratios(xs, ys):
        return [(y / x) if throughput else (x / y) for x, y in zip(xs, ys)]
    wall, cpu = ratios(ta, tb), ratios(ca, cb)
    return {"a": statistics.median(ta), "b": statistics.median(tb),
            "ratio": statistics.median(wall), "min": min(wall), "max": max(wall),
            "ca": statistics.median(ca), "cb": statistics.median(cb),
            "cpu": statistics.median(cpu), "cmin": min(cpu), "cmax": max(cpu),
            "runs": len(wall)}


# ---------------------------------------------------------------- registry

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, name):
        self.dir = os.path.join(WORK, "registry-" + name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            json.dump({"version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
                       "storage": {"filesystem": {"rootdirectory": os.path.join(self.dir, "s")}},
                       "http": {"addr": self.host, "secret": "bench"}}, f)
        self.proc = subprocess.Popen(["docker-registry", "serve", config], env=env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        for _ in range(400):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("docker-registry did not start")

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def skopeo_push(layout, dest):
    return ["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:%s:latest" % layout,
            "docker://%s" % dest]


def smith_push(layout, dest):
    return smith_cli("push", layout + ":latest", dest)


# ---------------------------------------------------------------- images

def build_image(name, dirs, random_mb=0):
    """An OCI layout with one layer per (image path, host dir) and, optionally, a layer of one
    incompressible file (like already-compressed assets). Returns (layout, compressed bytes)."""
    layout = os.path.join(WORK, "img-" + name)
    if os.path.exists(os.path.join(layout, "index.json")):
        return layout
    layer_dirs = []
    for i, (image_path, host) in enumerate(dirs):
        out = os.path.join(WORK, "layer-%s-%d" % (name, i))
        shutil.rmtree(out, ignore_errors=True)
        run(smith("layer", "--output", out, "--dir", "%s=%s" % (image_path, host)))
        layer_dirs.append(out)
    if random_mb:
        src = os.path.join(WORK, "random-%s" % name)
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "assets.bin"), "wb") as f:
            seed = b"smith-bench"
            for _ in range(random_mb * 16):  # 64 KiB per step, reproducible
                block = b"".join(hashlib.sha512(seed + b"%d" % j).digest() for j in range(1024))
                seed = block[:64]
                f.write(block)
        out = os.path.join(WORK, "layer-%s-random" % name)
        shutil.rmtree(out, ignore_errors=True)
        run(smith("layer", "--output", out, "--dir", "/opt/assets=%s" % src))
        layer_dirs.append(out)
    config = os.path.join(WORK, "config.json")
    with open(config, "w") as f:
        json.dump({"entrypoint": ["/bin/true"]}, f)
    shutil.rmtree(layout, ignore_errors=True)
    run(smith("image", "--output", layout, "--tag", "latest", "--config", config,
              *[a for d in layer_dirs for a in ("--layer", d)]))
    return layout


def layout_info(layout):
    index = json.load(open(os.path.join(layout, "index.json")))
    digest = index["manifests"][0]["digest"]
    manifest = json.load(open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1])))
    return digest, sum(l["size"] for l in manifest["layers"]), len(manifest["layers"])


# ---------------------------------------------------------------- measurements

def writers(tree, runs, out):
    rows = []
    os.makedirs(out, exist_ok=True)

    def ours(compression):
        def go(_i):
            dest = os.path.join(out, "smith-" + compression)
            shutil.rmtree(dest, ignore_errors=True)
            return timed(smith("layer", "--output", dest, "--compression", compression,
                               "--dir", "/=" + tree))
        return go

    def pipe(compressor, name):
        cmd = ["bash", "-o", "pipefail", "-c", "tar -C %s -cf - . | %s > %s" % (
            tree, compressor, os.path.join(out, name))]
        return lambda _i: timed(cmd)

    log("gzip writer vs tar | gzip -6")
    rows.append(("layer writer (gzip, all cores) vs `tar \\| gzip -6`",
                 summary(*paired(runs, ours("gzip"), pipe("gzip -6", "gnu.tar.gz")), throughput=True)))
    log("gzip writer vs tar | pigz -6")
    rows.append(("layer writer (gzip, all cores) vs `tar \\| pigz -6`",
                 summary(*paired(runs, ours("gzip"), pipe("pigz -6", "pigz.tar.gz")), throughput=True)))
    log("zstd writer vs tar | zstd -3 -T0")
    rows.append(("layer writer (zstd -3) vs `tar \\| zstd -3 -T0`",
                 summary(*paired(runs, ours("zstd"), pipe("zstd -q -3 -T0", "gnu.tar.zst")),
                         throughput=True)))
    sizes = {
        "smith gzip": os.path.getsize(os.path.join(out, "smith-gzip", "layer.tar.gz")),
        "gzip -6": os.path.getsize(os.path.join(out, "gnu.tar.gz")),
        "pigz -6": os.path.getsize(os.path.join(out, "pigz.tar.gz")),
        "smith zstd": os.path.getsize(os.path.join(out, "smith-zstd", "layer.tar.zst")),
        "zstd -3": os.path.getsize(os.path.join(out, "gnu.tar.zst")),
    }
    return rows, sizes


def transfers(label, layout, runs):
    rows = []
    digest, _, _ = layout_info(layout)
    cache = os.path.join(WORK, "blob-locations-%s.json" % label)
    smith_env = env(SMITH_BLOB_CACHE=cache)
    no_cache = env(SMITH_BLOB_CACHE="off")

    # Push into a fresh registry: every blob really goes up (one registry per timed push).
    current = {}

    def fresh(_i, _which):
        if current.get("reg"):
            current["reg"].stop()
        current["reg"] = Registry("fresh")

    log("%s: push into a fresh registry" % label)
    try:
        result = paired(runs,
                        lambda i: timed(smith_push(layout, current["reg"].host + "/bench/app:v1"),
                                        no_cache),
                        lambda i: timed(skopeo_push(layout, current["reg"].host + "/bench/app:v1")),
                        setup=fresh)
    finally:
        current["reg"].stop()
    rows.append(("%s: push, fresh registry" % label, summary(*result, throughput=False)))

    reg = Registry("shared")
    try:
        if os.path.exists(cache):
            os.unlink(cache)
        run(smith_push(layout, reg.host + "/bench/src-smith:v1"), env=smith_env)
        run(skopeo_push(layout, reg.host + "/bench/src-skopeo:v1"))
        log("%s: re-push into a new repository of the same registry" % label)
        result = paired(runs,
                        lambda i: timed(smith_push(layout, reg.host + "/bench/re-smith-%d:v1" % i),
                                        smith_env),
                        lambda i: timed(skopeo_push(layout,
                                                    reg.host + "/bench/re-skopeo-%d:v1" % i)))
        rows.append(("%s: re-push, new repository (mount)" % label,
                     summary(*result, throughput=False)))

        log("%s: pull into an empty directory" % label)
        pulled = os.path.join(WORK, "pulled")

        def clean(_i, _which):
            shutil.rmtree(pulled, ignore_errors=True)
        src = "%s/bench/src-smith@%s" % (reg.host, digest)
        result = paired(runs,
                        lambda i: timed(smith_cli("pull", src, pulled), no_cache),
                        lambda i: timed(["skopeo", "copy", "-q", "--src-tls-verify=false",
                                         "docker://" + src, "oci:%s:latest" % pulled]),
                        setup=clean)
        clean(0, "")
        rows.append(("%s: pull" % label, summary(*result, throughput=False)))
    finally:
        reg.stop()
    return rows


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def version(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env())
    return proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "?"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--tree-mb", type=int, default=200)
    p.add_argument("--small-mb", type=int, default=32, help="tree of the small image")
    p.add_argument("--random-mb", type=int, default=48, help="incompressible layer of the big image")
    p.add_argument("--only", choices=["writers", "transfers"], help="measure only these")
    p.add_argument("--out", default=os.path.join(HERE, "results", "throughput.md"))
    args = p.parse_args(argv)
    if args.only in (None, "writers") and subprocess.run(
            [PYTHON, "-c", "import zstandard"], stderr=subprocess.DEVNULL).returncode:
        raise SystemExit("%s cannot import zstandard (the zstd writer needs it): set "
                         "SMITH_BENCH_PYTHON to an interpreter that has it" % PYTHON)
    os.makedirs(os.path.join(WORK, "home"), exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    tree = build_tree(args.tree_mb)
    total, files = tree_bytes(tree)
    rows, sizes, images = [], {}, []
    if args.only in (None, "writers"):
        w, sizes = writers(tree, args.runs, os.path.join(WORK, "writers"))
        rows += w
    if args.only in (None, "transfers"):
        big = build_image("big", [(os.path.join("/", d), os.path.join(tree, d)) for d in
                                  ("usr/lib/x86_64-linux-gnu", "usr/lib/python3", "usr/share")
                                  if os.path.isdir(os.path.join(tree, d))], args.random_mb)
        small = build_image("small", [("/", build_tree(args.small_mb))])
        for label, layout in (("big", big), ("small", small)):
            _, size, layers = layout_info(layout)
            images.append("%s image: %d layers, %.1f MB compressed" % (label, layers, size / 1e6))
            rows += transfers(label, layout, args.runs)
    load_after = os.getloadavg()
    commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]).strip()
    # Only the measured code counts: bench/run rewrites bench/ outputs while this runs.
    dirty = run(["git", "-C", REPO, "status", "--short", "--untracked-files=no", "--",
                 "pants-plugins"]).strip()
    lines = [
        "# Throughput (issue 20)", "",
        "Written by `bench/throughput.py` (run by `bench/run`). Each row: median of %d paired "
        "runs (A B A B ..., after one untimed warm-up pair), the ratio taken pair by pair, with "
        "its min and max. Whole processes are timed, interpreter start-up included; CPU = user + "
        "sys seconds of the processes each side waited for (the registry's own work is in "
        "neither side)." % args.runs,
        "",
        "- date: %s" % started.strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %s, %d CPUs, %s %s" % (cpu_model(), os.cpu_count() or 0, platform.system(),
                                           platform.release()),
        "- load average (1/5/15 min): %.2f %.2f %.2f before, %.2f %.2f %.2f after" % (
            *load_before, *load_after),
        "- commit: %s%s" % (commit, " (with uncommitted changes in pants-plugins/)"
                            if dirty else ""),
        "- layer writers run on Python %s (%s -m smith); push/pull on Python %s as dist/smith "
        "starts them (%s -I -S, this checkout's sources); %s; %s; %s; %s; docker-registry %s" % (
            run([PYTHON, "-c", "import platform; print(platform.python_version())"]).strip(),
            PYTHON,
            run([CLI_PYTHON, "-c", "import platform; print(platform.python_version())"]).strip(),
            CLI_PYTHON, version(["gzip", "--version"]), version(["pigz", "--version"]),
            version(["zstd", "--version"]).replace("*", "").strip(),
            version(["skopeo", "--version"]), version(["docker-registry", "--version"]).split()[-1]),
        "- layer writers: %s (%.1f MB in %d files)" % (tree, total / 1e6, files),
    ]
    lines += ["- " + i for i in images]
    lines += ["", "Writers: ratio = peer's time / smith's time (above 1: smith is faster). "
              "Transfers: ratio = smith's time / skopeo's time (below 1: smith is faster). CPU ratios "
              "the same way round.", "",
              "| comparison | smith s | peer s | wall ratio [min-max] | smith CPU s | peer CPU s "
              "| CPU ratio [min-max] |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in rows:
        lines.append("| %s | %.3f | %.3f | **%.2fx** [%.2f-%.2f] | %.3f | %.3f | %.2fx [%.2f-%.2f] |"
                     % (name, s["a"], s["b"], s["ratio"], s["min"], s["max"], s["ca"], s["cb"],
                        s["cpu"], s["cmin"], s["cmax"]))
    if sizes:
        lines += ["", "Output sizes of the writers (MB): " + ", ".join(
            "%s %.1f" % (k, v / 1e6) for k, v in sizes.items()) + "."]
    lines.append("")
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        f.write(text)
    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
