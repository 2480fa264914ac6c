#!/usr/bin/env python3
"""examples/pyapp: the full image vs the traced minimization (issue 18), one command:

    python3 bench/pyapp_minimize.py [--runs N] [--runtime PATH] [--no-build] [--out FILE]

1. `./pants --no-pantsd package examples/pyapp:image examples/pyapp:minimal` (unless --no-build).
2. Sizes of both images: files, file bytes (regular files of all layers), compressed layers.
3. The traced minimum: the service workload of examples/pyapp:image-service (same spec) run once
   more under `smith trace` on the full image; the bytes of the regular files it opened,
   executed or mapped, resolved in the unpacked image. The goal: minimized <= 1.2x this.
4. Start to ready through the launcher (`smith launch service`, the phases it reports: start
   + ready), full and minimized paired (A B A B ...), median [min-max] of --runs each.
Records date, load average before/after, commit. Needs root.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FULL, MINIMAL = "dist/examples.pyapp/image", "dist/examples.pyapp/minimal"
# examples/pyapp/BUILD's _SERVICE, as the core spec (smith/launch/service_spec.py).
SPEC = {
    "read": "examples/pyapp/read", "ready_port": 8080, "ready_log": "pyapp: serving on 0\\.0\\.0\\.0:8080",
    "http_checks": [{"path": "/", "status": 200, "body": '"loader": "CSafeLoader"'},
                    {"path": "/missing", "status": 404}],
    "stop_signal": "TERM", "expect_stop_exit": 0,
}


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def run(*argv: str, cwd: str = REPO) -> str:
    env = {"PATH": PATH, "HOME": os.path.expanduser("~"), "LC_ALL": "C.UTF-8",
           "PYTHONPATH": os.path.join(REPO, "pants-plugins")}
    p = subprocess.run(list(argv), cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if p.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(argv), p.stdout[-4000:]))
    return p.stdout


def smith(*argv: str) -> str:
    return run(sys.executable, "-m", "smith", *argv)


def _blob(layout: str, digest: str) -> str:
    return os.path.join(REPO, layout, "blobs", "sha256", digest.split(":", 1)[1])


def sizes(layout: str):
    """(files, file bytes, compressed layer bytes) of an image layout."""
    index = json.load(open(os.path.join(REPO, layout, "index.json")))
    manifest = json.load(open(_blob(layout, index["manifests"][0]["digest"])))
    files = size = packed = 0
    for layer in manifest["layers"]:
        packed += layer["size"]
        with tarfile.open(_blob(layout, layer["digest"]), "r:*") as t:
            for m in t:
                if m.isreg():
                    files += 1
                    size += m.size
    return files, size, packed


def traced_minimum(spec_path: str, runtime: str, work: str) -> int:
    trace = os.path.join(work, "trace.json")
    smith("trace", "--output", trace, "--image", FULL, "--", "launch", "service", "--spec", spec_path,
          "--runtime", runtime)
    root = os.path.join(work, "root")
    smith("unpack", "--output", root, FULL)
    total = 0
    for p in json.load(open(trace))["paths"]:
        host = os.path.realpath(os.path.join(root, p.lstrip("/")))
        if host.startswith(root + "/") and os.path.isfile(host):
            total += os.path.getsize(host)
    return total


PHASE = re.compile(r"PASS .*: start ([\d.]+) s -> ready ([\d.]+) s")


def start_to_ready(spec_path: str, runtime: str) -> float:
    out = smith("launch", "service", "--spec", spec_path, "--runtime", runtime)
    m = PHASE.search(out)
    if not m:
        sys.exit("no phases in the launcher's output:\n" + out)
    return float(m.group(1)) + float(m.group(2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--runtime", default="runc", help="the launcher's runtime (default runc)")
    p.add_argument("--no-build", action="store_true", help="use the images already in dist/")
    p.add_argument("--out", default=os.path.join(HERE, "results", "pyapp_minimize.md"))
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (containers, fanotify)")
    load_before = load()
    if not args.no_build:
        run("./pants", "--no-pantsd", "package", "examples/pyapp:image", "examples/pyapp:minimal")
    with tempfile.TemporaryDirectory(prefix="smith-bench-pyapp-") as work:
        specs = {}
        for name, layout in (("full", FULL), ("minimal", MINIMAL)):
            spec = dict(SPEC, name=name, layout=layout)
            specs[name] = os.path.join(work, name + ".json")
            with open(specs[name], "w") as f:
                json.dump(spec, f)
        minimum = traced_minimum(specs["full"], args.runtime, work)
        times = {"full": [], "minimal": []}
        start_to_ready(specs["full"], args.runtime)  # warm: layers into the store
        start_to_ready(specs["minimal"], args.runtime)
        for _ in range(args.runs):
            for name in ("full", "minimal"):
                times[name].append(start_to_ready(specs[name], args.runtime))
    commit = run("git", "rev-parse", "--short", "HEAD").strip()
    rows = []
    for name, layout in (("full `examples/pyapp:image`", FULL), ("minimized `examples/pyapp:minimal`", MINIMAL)):
        files, size, packed = sizes(layout)
        t = times["full" if name.startswith("full") else "minimal"]
        rows.append("| %s | %d | %s | %s | %.2f s [%.2f-%.2f] |" % (
            name, files, format(size, ","), format(packed, ","), statistics.median(t), min(t), max(t)))
    _, minimal_bytes, _ = sizes(MINIMAL)
    rows.append("| traced minimum (files the service opened, executed or mapped) | - | %s | - | - |"
                % format(minimum, ","))
    text = "\n".join([
        "### examples/pyapp: full vs traced minimization (`python3 bench/pyapp_minimize.py`)",
        "",
        "%s, commit %s, %d CPUs, load %s before / %s after, runtime %s, %d paired runs." % (
            datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), commit, os.cpu_count(),
            load_before, load(), args.runtime, args.runs),
        "",
        "| image | files | file bytes | compressed layers | start to ready, median [min-max] |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Minimized / traced minimum: %.3fx file bytes (goal <= 1.2x); minimized: %.1f MB of files "
        "(goal <= 25 MB)." % (minimal_bytes / minimum, minimal_bytes / 1e6),
        "",
    ])
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
