"""Test helper: run Debian's docker-registry (distribution 2.8) on a free 127.0.0.1 port with
a private storage directory, optionally with htpasswd auth, TLS or token auth."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Optional

import smith

from smith.testutil.debian import require_tools, tool_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the registry's child before exec: SIGKILL it when the test process dies, also when a
    timeout kills pytest before any teardown runs (its own session keeps it from the killpg)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _in_main_thread() -> bool:
    """PR_SET_PDEATHSIG fires when the parent *thread* ends: a registry restarted from a timer
    thread (robustness_test) would die with that thread, so only the main thread's are tied."""
    import threading
    return threading.current_thread() is threading.main_thread()


class LocalRegistry:
    def __init__(self, workdir: str, htpasswd: Optional[str] = None,
                 tls: Optional[tuple] = None, token: Optional[dict] = None,
                 fixed_secret: bool = True):
        """`tls` is (cert, key); `token` is the `auth: token:` section of the registry config."""
        require_tools("docker-registry")
        self.workdir = workdir
        self.root = os.path.join(workdir, "storage")
        os.makedirs(self.root, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.tls = tls
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": self.root}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if fixed_secret:
            # Upload URLs are signed with this secret; a fixed one keeps them valid across a
            # restart, as in a real deployment. Without it each start picks a random secret.
            config["http"]["secret"] = "smith-test-secret"
        if tls:
            config["http"]["tls"] = {"certificate": tls[0], "key": tls[1]}
        if htpasswd:
            config["auth"] = {"htpasswd": {"realm": "smith-test", "path": htpasswd}}
        if token:
            config["auth"] = {"token": token}
        self.config = os.path.join(workdir, "config.yml")
        with open(self.config, "w") as f:
            json.dump(config, f)  # JSON is YAML
        self.log = os.path.join(workdir, "registry.log")
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return  # already serving: a second one could not bind the port and would be leaked
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                         env=tool_env(), stdout=log, stderr=log,
                                         start_new_session=True, preexec_fn=(
                                             _die_with_parent if _in_main_thread() else None))
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited:\n" + open(self.log).read()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not listen on %s" % self.host)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        self.kill()

    def blob_data_path(self, digest: str) -> str:
        hexpart = digest.split(":", 1)[1]
        return os.path.join(self.root, "docker", "registry", "v2", "blobs", "sha256",
                            hexpart[:2], hexpart, "data")


def run_smith(args, home: str, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m smith ARGS` as a user would, with HOME pointing at a test directory."""
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(smith.__file__)))
    return subprocess.run([sys.executable, "-m", "smith", *args],
                          env=tool_env(PYTHONPATH=pkg_parent, HOME=home, **env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)


def skopeo(*args: str) -> subprocess.CompletedProcess:
    require_tools("skopeo")
    return subprocess.run(["skopeo", *args], env=tool_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
