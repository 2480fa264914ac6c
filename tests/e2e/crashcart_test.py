"""crashcart end to end: `./pants package` builds the toolbox (examples/toolbox), dist/crashcart,
dist/smith-runtime and the redis microcontainer (examples/redis); redis runs from the image with
dist/smith-runtime and with runc (umoci unpack, read-only root), and dist/crashcart runs the
toolbox's ls, cat, strace and ps inside it while redis keeps answering PING, and leaves the
mounts of the host and of the container as they were."""
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from e2e.repo import copy_repo, pants, umoci_ref
from smith.testutil.debian import require_tools, tool_env

TOOLBOX = "dist/examples.toolbox/toolbox"
REDIS = "dist/examples.redis/redis"
REDIS_LOCK = "examples/redis/redis-pkgs.lock.json"

pytestmark = pytest.mark.debian_mirror


@pytest.fixture(scope="module")
def repo(scratch):
    require_tools("runc", "umoci", "redis-cli", "patchelf")
    repo = copy_repo(scratch / "crashcart")  # scratch (conftest.py) is removed after the session
    if not (repo / REDIS_LOCK).exists():  # until examples/redis commits its lockfile
        pants(repo, "generate-lockfiles", "--resolve=redis-pkgs")
    pants(repo, "package", "examples/toolbox:toolbox", "//:crashcart", "//:smith-runtime",
          "examples/redis:redis")
    return repo


@pytest.fixture(scope="module")
def rootfs(repo, tmp_path_factory):
    """The redis image unpacked once by umoci; both runtimes run it read-only."""
    layout = repo / REDIS
    tag = json.loads((layout / "index.json").read_text())["manifests"][0]["annotations"][
        "org.opencontainers.image.ref.name"]
    bundle = tmp_path_factory.mktemp("redis-unpacked") / "bundle"
    ref = umoci_ref(layout, tag, bundle.parent / "amd64")  # redis is multi-platform: its amd64 image
    subprocess.run(["umoci", "unpack", "--image", ref, str(bundle)], check=True,
                   env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return bundle


def _in_netns(pid, *argv, timeout=5):
    """Run a host program (redis-cli, ip) in the container's network namespace only."""
    return subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], env=tool_env(), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)


def ping(pid):
    try:
        return _in_netns(pid, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "PING").stdout.strip()
    except subprocess.TimeoutExpired:
        return "timeout"


class Redis:
    """redis-server of the image in a container of `runtime` (runc or dist/smith-runtime)."""

    def __init__(self, repo, rootfs, runtime, tmp):
        self.binary = "runc" if runtime == "runc" else str(repo / "dist/smith-runtime")
        self.root_flag = "--runc-root" if runtime == "runc" else "--runtime-root"
        self.root, self.cid = str(tmp / "state"), "cc-e2e-redis-%s-%d" % (runtime, os.getpid())
        self.log = str(tmp / "container.log")
        config = json.loads((rootfs / "config.json").read_text())
        config["root"] = {"path": str(rootfs / "rootfs"), "readonly": True}
        config["process"]["terminal"] = False
        # umoci turns the image's volumes into tmpfs mounts: /write (data) and /run (pid file) stay
        # so, writable by the image user; /read gets the image's config bound read-only, as a
        # configmap would be.
        volumes = ("/read", "/write", "/run")
        config["mounts"] = [m for m in config["mounts"] if m["destination"] not in volumes] + [
            {"destination": "/read", "type": "bind", "source": str(rootfs / "rootfs/read"),
             "options": ["rbind", "ro"]}] + [
            {"destination": d, "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777"]} for d in ("/write", "/run")]
        bundle = tmp / "bundle"
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(config))
        self.runtime("create", "--bundle", str(bundle), self.cid)
        self.pid = self.state()["pid"]
        # smith-runtime leaves loopback down (runc brings it up); redis binds 127.0.0.1.
        assert _in_netns(self.pid, "ip", "link", "set", "lo", "up").returncode == 0
        self.runtime("start", self.cid)
        deadline = time.monotonic() + 20
        while ping(self.pid) != "PONG":
            assert time.monotonic() < deadline, "redis never answered PING"
            time.sleep(0.1)

    def runtime(self, *args):
        # The container outlives create: it must not inherit our pipes (its output goes to a file).
        with open(self.log, "a") as log:
            res = subprocess.run([self.binary, "--root", self.root, *args], env=tool_env(), timeout=60,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        assert res.returncode == 0, Path(self.log).read_text()[-3000:]

    def state(self):
        res = subprocess.run([self.binary, "--root", self.root, "state", self.cid], env=tool_env(),
                             stdout=subprocess.PIPE, universal_newlines=True, timeout=60)
        return json.loads(res.stdout)

    def stop(self):
        subprocess.run([self.binary, "--root", self.root, "delete", "--force", self.cid],
                       env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        try:
            os.kill(self.pid, signal.SIGKILL)  # never leave redis running if delete failed
        except ProcessLookupError:
            pass


class Pinger(threading.Thread):
    """PING redis from the host every 0.1 s while crashcart works in its container."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.answers, self.done = pid, [], threading.Event()

    def run(self):
        while not self.done.is_set():
            self.answers.append(ping(self.pid))
            time.sleep(0.1)


def mountinfo(pid):
    return Path("/proc/%d/mountinfo" % pid).read_text()


def host_mounts(tmp):
    """The host's mounts that crashcart or this container could touch (concurrent tests on this
    machine mount other things meanwhile)."""
    return [line for line in mountinfo(os.getpid()).splitlines()
            if "crashcart" in line or str(tmp) in line]


SCRIPT = "; echo ==; ".join(
    ["ls -l /proc/1/exe", "cat /proc/1/status", "timeout 2 strace -p 1 2>&1", "ps -e -o pid=,comm=",
     "cat /proc/self/maps"]) + "; exit 7"


@pytest.mark.parametrize("runtime", ["smith", "runc"])
def test_crashcart_debugs_a_running_redis(repo, rootfs, runtime, tmp_path):
    toolbox = repo / TOOLBOX
    manifest = json.loads((toolbox / "crashcart-toolbox.json").read_text())
    assert {"bash", "ls", "cat", "strace", "ps", "timeout", "ip", "less", "curl"} <= set(manifest["bin"])
    redis = Redis(repo, rootfs, runtime, tmp_path)
    try:
        pid = redis.pid
        before = (host_mounts(tmp_path), mountinfo(pid))
        pinger = Pinger(pid)
        pinger.start()
        try:
            res = subprocess.run(
                [str(repo / "dist/crashcart"), "--toolbox", str(toolbox), redis.root_flag, redis.root,
                 redis.cid, "--", "bash", "-c", SCRIPT],
                env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                timeout=60)
            time.sleep(0.3)  # a few PINGs after crashcart returned
        finally:
            pinger.done.set()
            pinger.join()
        assert res.returncode == 7, res.stderr  # the command's own exit status
        exe, status, strace, ps, maps = res.stdout.split("==\n")
        # ls inside names the container's own path of the very program the host sees as redis's.
        inside = exe.strip().split(" -> ")[1]
        assert inside.startswith("/usr/bin/redis-")
        assert os.path.samefile(str(rootfs / "rootfs") + inside, "/proc/%d/exe" % pid)
        comm = Path("/proc/%d/comm" % pid).read_text().strip()
        assert status.startswith("Name:\t%s\n" % comm) and "\nNSpid:" in status
        assert "Process 1 attached" in strace
        procs = [line.split(None, 1) for line in ps.splitlines()]
        assert ["1", comm] in procs and ["1"] == [p for p, _ in procs if p == "1"]
        assert any(comm == "ps" for _, comm in procs)  # ps ran in the container's pid namespace
        # The tools load the toolbox's loader and libc, never the container's own (redis has one).
        files = {line.split()[5] for line in maps.splitlines() if len(line.split()) > 5}
        libs = {f for f in files if ".so" in f}
        assert "/dev/crashcart/lib/libc.so.6" in libs and "/dev/crashcart/lib/ld-linux-x86-64.so.2" in libs
        assert all(f.startswith("/dev/crashcart/") for f in libs), libs
        # redis answered throughout (strace included) and still does; nothing of crashcart is left.
        assert len(pinger.answers) >= 5 and set(pinger.answers) == {"PONG"}, pinger.answers
        assert redis.state()["status"] == "running" and redis.state()["pid"] == pid
        assert ping(pid) == "PONG"
        assert (host_mounts(tmp_path), mountinfo(pid)) == before
    finally:
        redis.stop()
