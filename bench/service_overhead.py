"""Benchmark: a service test against the same steps done by hand with podman.

A (smith): `python3 -m smith.launch service` with a spec that starts the redis image detached,
waits for 127.0.0.1:6379 in its network namespace, sends PING (expects PONG), runs the redis-cli
image as a sidecar (`SET greeting hello`, expects OK), stops redis with SIGTERM (expects exit 0)
and removes everything. This is the Process `pants test` runs for a smith_service_test (Pants'
own start-up, about 12 s without pantsd, is not in it).

B (podman, by hand): the same images imported into podman; `podman run -d` of redis (read-only
root, /write a host directory, no network), `podman run --rm --network container:ID` of
redis-cli with PING until it answers PONG (readiness, same client), the same `SET`, `podman
stop` (SIGTERM), the exit code from `podman inspect`, `podman rm`.

Runs are paired (A B A B ...), so machine load hits both alike; the table has the median and
the spread (min-max) of each, and the median of the per-pair ratios A/B.

usage: PYTHONPATH=pants-plugins python3 bench/service_overhead.py --redis OCI_DIR --cli OCI_DIR
       [--runtime PATH] [--runs N] [--out FILE] [--keep DIR [--once smith|podman]]
(OCI_DIR: `./pants package examples/redis:redis examples/redis:redis-cli` -> dist/examples.redis/...)
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pants-plugins"))

from smith.testutil.launch import remove_store  # noqa: E402
from smith.testutil.debian import require_tools, tool_env  # noqa: E402

# podman on these hosts: runc (crun refuses hybrid cgroups), cgroupfs, rlimits within the hard ones.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def sh(argv, check=True, **kw):
    proc = subprocess.run(argv, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if check and proc.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(argv), proc.returncode,
                                                 (proc.stdout + proc.stderr).decode()[-2000:]))
    return proc


def import_image(layout: str, name: str) -> str:
    sh(PODMAN + ["pull", "-q", "oci:%s:latest" % os.path.abspath(layout)])
    ref = "localhost/%s:latest" % os.path.abspath(layout).strip("/")
    sh(PODMAN + ["tag", ref, name])
    return name


def smith_once(spec: str, store: str, runtime: str) -> None:
    proc = sh([sys.executable, "-m", "smith.launch", "service", "--spec", spec, "--store", store,
               "--runtime", runtime], check=False, cwd=os.path.join(os.path.dirname(HERE), "pants-plugins"))
    if proc.returncode != 0 or not proc.stdout.startswith(b"PASS"):
        raise SystemExit("smith service test failed:\n" + (proc.stdout + proc.stderr).decode()[-3000:])


def podman_once(work: str) -> None:
    write = tempfile.mkdtemp(dir=work)
    os.chown(write, 10, 10)
    cid = sh(PODMAN + ["run", "-d", "--read-only", "--network", "none", "-v", write + ":/write",
                       *LIMITS, "bench-redis"]).stdout.decode().strip()
    try:
        cli = PODMAN + ["run", "--rm", "--read-only", "--network", "container:" + cid, *LIMITS, "bench-redis-cli"]
        deadline = time.monotonic() + 30
        while sh(cli + ["PING"], check=False).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise SystemExit("podman: redis did not answer PING")
            time.sleep(0.05)
        if sh(cli + ["SET", "greeting", "hello"]).stdout.strip() != b"OK":
            raise SystemExit("podman: SET did not answer OK")
        sh(PODMAN + ["stop", "-t", "10", cid])
        code = sh(PODMAN + ["inspect", "--format", "{{.State.ExitCode}}", cid]).stdout.strip()
        if code != b"0":
            raise SystemExit("podman: redis exited with %s after SIGTERM" % code.decode())
    finally:
        sh(PODMAN + ["rm", "-f", cid], check=False)
        shutil.rmtree(write, ignore_errors=True)


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis", required=True)
    p.add_argument("--cli", required=True)
    p.add_argument("--runtime", default="runc", help="the launcher's runtime (a smith-runtime zipapp or runc)")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--out")
    p.add_argument("--once", choices=("smith", "podman"),
                   help="one run of one side only (images imported and store warm from an earlier call "
                        "with --keep), to time it with an outside tool")
    p.add_argument("--keep", metavar="DIR", help="work directory kept between calls (with --once)")
    args = p.parse_args()
    if args.once:
        work = args.keep or "/tmp/smith-bench-service-keep"
        if args.once == "smith":
            smith_once(os.path.join(work, "spec.json"), os.path.join(work, "store"), args.runtime)
        else:
            podman_once(work)
        return 0
    require_tools("podman", "runc")
    work = args.keep or tempfile.mkdtemp(prefix="smith-bench-service-", dir="/tmp")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o711)
    store = os.path.join(work, "store")
    os.makedirs(store, 0o711, exist_ok=True)
    spec = os.path.join(work, "spec.json")
    with open(spec, "w") as f:
        json.dump({"name": "bench", "layout": os.path.abspath(args.redis) + ":latest", "ready_port": 6379,
                   "tcp_checks": [{"send": "PING\r\n", "expect": "PONG"}],
                   "client": {"layout": os.path.abspath(args.cli) + ":latest", "args": ["SET", "greeting", "hello"],
                              "expect_stdout": "^OK$"},
                   "stop_signal": "TERM", "expect_stop_exit": 0}, f)
    try:
        import_image(args.redis, "bench-redis")
        import_image(args.cli, "bench-redis-cli")
        smith_once(spec, store, args.runtime)  # warm-up: layers into the store, caches
        podman_once(work)
        a, b = [], []
        load_before = os.getloadavg()
        for _ in range(args.runs):
            a.append(timed(smith_once, spec, store, args.runtime))
            b.append(timed(podman_once, work))
        load_after = os.getloadavg()
    finally:
        if not args.keep:
            sh(PODMAN + ["rmi", "-f", "bench-redis", "bench-redis-cli", *(
                "localhost/%s:latest" % os.path.abspath(x).strip("/") for x in (args.redis, args.cli))],
               check=False)
            remove_store(work)  # unmounts whatever is left below it, then deletes it
    ratios = [x / y for x, y in zip(a, b)]

    def row(name, xs, ratio):
        return "| %s | %.0f | %.0f-%.0f | %s |" % (name, statistics.median(xs) * 1000, min(xs) * 1000,
                                                  max(xs) * 1000, ratio)

    runtime = os.path.basename(args.runtime)
    lines = [
        "- date: %s UTC; machine: %s, %d CPUs, Linux %s" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                                        platform.processor() or platform.machine(),
                                                        os.cpu_count(), platform.release()),
        "- load average (1/5/15 min): %s before, %s after" % (
            " ".join("%.2f" % x for x in load_before), " ".join("%.2f" % x for x in load_after)),
        "- %d paired runs (A B A B ...) after one warm-up each" % args.runs,
        "",
        "| redis: start, ready, PING, redis-cli SET, SIGTERM, cleanup | median ms | min-max ms | ratio to podman (median of pairs) |",
        "|---|---:|---:|---:|",
        row("smith launch service (%s)" % runtime, a, "%.2fx (%.2f-%.2f)" % (
            statistics.median(ratios), min(ratios), max(ratios))),
        row("podman run -d + podman run --network container: (runc) + stop + rm", b, "1.00x"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
