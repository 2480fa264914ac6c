#!/usr/bin/env python3
"""Build time and size per platform: bench/platforms.py [--runs N] [--out FILE.md]

For each multi-platform example image (examples/hello:hello, examples/redis:redis) and each of its
platforms: a cold `./pants --no-pantsd package` of that platform's image alone (a copy of this
checkout whose smith_image lists only that platform; empty local store and named caches, so the
Debian packages are downloaded and every smith step runs), then the image's compressed size (its
layer blobs) and unpacked size (the layers' tar bytes). Runs alternate platforms (amd64, arm64,
amd64, ...) so both see the same load; the median of --runs is reported, with min-max, and the
load average before and after. A `./pants --no-pantsd list` of the same copy is timed too: Pants'
own start-up, in every row. Not run by CI. Needs the Debian mirror.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGES = [("examples/hello:hello", "examples/hello/BUILD", "hello"),
          ("examples/redis:redis", "examples/redis/BUILD", "redis")]
PLATFORMS = ["linux/amd64", "linux/arm64"]


def copy_checkout(dest):
    listed = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, stdout=subprocess.PIPE).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = os.path.join(REPO, rel)
        if os.path.lexists(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)


def only_platform(repo, build_file, name, platform):
    """The copy's smith_image `name` built for `platform` alone."""
    path = os.path.join(repo, build_file)
    text = open(path).read()
    pattern = r'(smith_image\(\n    name="%s",(?:\n.*?)*?\n    platforms=)\[[^\]]*\]' % re.escape(name)
    new, n = re.subn(pattern, r'\g<1>["%s"]' % platform, text)
    if n != 1:
        raise SystemExit("bench/platforms.py: cannot find the platforms of %s in %s" % (name, build_file))
    open(path, "w").write(new)


def pants(repo, *args, store=None):
    argv = ["./pants", "--no-pantsd"]
    if store:
        argv += ["--local-store-dir=%s" % os.path.join(store, "lmdb"),
                 "--named-caches-dir=%s" % os.path.join(store, "named")]
    start = time.monotonic()
    subprocess.run(argv + list(args), cwd=repo, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={"PATH": PATH, "HOME": os.path.expanduser("~"), "LC_ALL": "C.UTF-8"})
    return time.monotonic() - start


def sizes(layout):
    """(compressed, unpacked) bytes of the one-platform image's layers."""
    def blob(digest):
        return os.path.join(layout, "blobs", *digest.split(":"))
    index = json.load(open(os.path.join(layout, "index.json")))
    manifest = json.load(open(blob(index["manifests"][0]["digest"])))
    packed = unpacked = 0
    for layer in manifest["layers"]:
        packed += layer["size"]
        with gzip.open(blob(layer["digest"])) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                unpacked += len(chunk)
    return packed, unpacked


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "platforms.md"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    work = tempfile.mkdtemp(prefix="smith-bench-platforms-")
    try:
        repos = {}
        for target, build_file, name in IMAGES:
            for platform in PLATFORMS:
                repo = os.path.join(work, "%s-%s" % (name, platform.split("/")[1]), "smith")
                copy_checkout(repo)
                only_platform(repo, build_file, name, platform)
                repos[(target, platform)] = repo
        startup = pants(next(iter(repos.values())), "list", "examples/hello:")
        times = {k: [] for k in repos}
        for i in range(args.runs):
            for key, repo in repos.items():
                store = os.path.join(work, "store-%d-%d" % (i, len(times[key])))
                times[key].append(pants(repo, "package", key[0], store=store))
                shutil.rmtree(store, ignore_errors=True)
        load_after = os.getloadavg()
        rows = []
        for (target, platform), repo in repos.items():
            path, name = target.split(":")
            packed, unpacked = sizes(os.path.join(repo, "dist", path.replace("/", "."), name))
            t = times[(target, platform)]
            rows.append("| %s | %s | %.1f [%.1f-%.1f] | %.3f | %.3f |" % (
                target, platform, statistics.median(t), min(t), max(t), packed / 1e6, unpacked / 1e6))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE).stdout.decode().strip()
    text = "\n".join([
        "# Build time and size per platform (bench/platforms.py)", "",
        "- date: %s UTC, commit %s, %d CPUs" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), commit, os.cpu_count()),
        "- load average (1/5/15 min): %.2f %.2f %.2f before, %.2f %.2f %.2f after" % (load_before + load_after),
        "- runs per cell: %d (median [min-max]); Pants start-up alone (`list`, no pantsd): %.1f s, in every row" % (
            args.runs, startup),
        "", "Cold build = `./pants --no-pantsd package` of that platform's image alone with an empty local store "
        "and named caches (packages downloaded, tool PEX built, every smith step run). Compressed = the layer "
        "blobs; unpacked = the layers' tar bytes.", "",
        "| image | platform | cold build s | compressed MB | unpacked MB |", "|---|---|---:|---:|---:|",
        *rows, ""])
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    open(args.out, "w").write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
