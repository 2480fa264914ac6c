"""`./pants --smith-test-run-network=host run examples/pyapp:image`, at the launcher: the command
the run goal builds (`smith launch run --network host`, in a process group of its own, as Pants
starts it) on the image `pants package` wrote. The service answers on the host's loopback, and
SIGTERM or SIGINT to the run stops the container cleanly: the app's own exit 0, nothing left in
the store. (A SIGTERM to the Pants process itself is held by Pants 2.17 until the run ends: its
handler, which forwards signals to children, cannot run while the engine waits; see
docs/python-apps.md.)"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from smith.testutil.debian import require_tools
from smith.testutil.launch import launch_cmd, smith_env

IMAGE = "examples.pyapp/image"  # runtime_package_dependencies: the packaged image, in the sandbox
CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "read/config.yaml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_with_host_network_serves_on_loopback_and_stops_cleanly(store, tmp_path, sig):
    require_tools("runc")
    assert os.path.isdir(IMAGE), "the packaged image is missing: runtime_package_dependencies"
    port = free_port()  # the image's config, on a port no other run on this host holds
    read = tmp_path / "read"
    read.mkdir()
    with open(CONFIG) as f:
        config = f.read().replace("port: 8080", "port: %d" % port).replace("0.0.0.0", "127.0.0.1")
    (read / "config.yaml").write_text(config)
    os.chmod(str(tmp_path), 0o711)
    argv = launch_cmd("run", "--layout", IMAGE + ":latest", "--store", store, "--network", "host",
                      "--read", str(read))
    proc = subprocess.Popen(argv, env=smith_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                body = json.loads(get("http://127.0.0.1:%d/" % port))
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")
                assert time.monotonic() < deadline, "not serving on 127.0.0.1:%d within 60 s" % port
                time.sleep(0.1)
        assert body["loader"] == "CSafeLoader" and body["python"] == "3.11"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"pyapp: stopped" in err
    with pytest.raises(OSError):
        get("http://127.0.0.1:%d/healthz" % port)
