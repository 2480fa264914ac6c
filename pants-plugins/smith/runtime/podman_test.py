"""A real client drives the runtime: podman (from Debian) with --runtime pointing at our zipapp."""
import os
import subprocess
import tarfile

import pytest

from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools

ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]  # no CAP_SYS_RESOURCE here


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    require_tools("podman", "busybox")
    app = tb.cached_zipapp()
    base = tmp_path_factory.mktemp("podman")
    cmd = ["podman", "--root", str(base / "root"), "--runroot", str(base / "runroot"),
           "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
           "--runtime", app]
    env = {"PATH": tb.PATH, "HOME": str(base), "XDG_CONFIG_HOME": str(base / "config")}

    def run(*args, check=True, timeout=60):
        res = subprocess.run(cmd + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=timeout)
        if check:
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res
    image = str(base / "busybox.tar")
    with tarfile.open(image, "w") as tar:
        tar.add(tb.busybox_rootfs(), arcname=".")
    run("import", image, "localhost/smith-busybox:test")
    yield run
    run("rm", "--all", "--force", check=False)
    run("rmi", "--all", "--force", check=False)


def test_podman_run_exec_stop_rm(podman):
    res = podman("run", "--rm", "--network", "none", *ULIMITS, "localhost/smith-busybox:test",
                 "sh", "-c", "echo hello from podman; test $$ = 1 && grep -c Cap /proc/self/status")
    assert res.stdout == "hello from podman\n5\n"
    res = podman("run", "--rm", "--network", "none", *ULIMITS, "localhost/smith-busybox:test", "sh", "-c", "exit 7",
                 check=False)
    assert res.returncode == 7

    cid = podman("run", "-d", "--name", "smith-c1", "--network", "none", *ULIMITS,
                 "localhost/smith-busybox:test", "sleep", "300").stdout.strip()
    assert podman("inspect", "--format", "{{.State.Status}}", "smith-c1").stdout.strip() == "running"
    assert os.path.exists(os.path.join("/run/smith-runtime", cid, "state.json"))
    res = podman("exec", "smith-c1", "sh", "-c", "echo in-exec; ps -o comm | grep -c sleep")
    assert res.stdout == "in-exec\n1\n"
    assert podman("exec", "smith-c1", "sh", "-c", "exit 5", check=False).returncode == 5
    assert podman("exec", "-t", "smith-c1", "tty").stdout.strip() == "/dev/pts/0"
    podman("stop", "-t", "1", "smith-c1")
    assert podman("inspect", "--format", "{{.State.Status}}", "smith-c1").stdout.strip() == "exited"
    podman("rm", "smith-c1")
    assert not os.path.exists(os.path.join("/run/smith-runtime", cid))
    assert tb.leftovers(cid) == []


def test_podman_tty_run(podman):
    res = podman("run", "--rm", "-t", "--network", "none", *ULIMITS, "localhost/smith-busybox:test",
                 "sh", "-c", "tty; echo term-ok")
    assert res.stdout.replace("\r", "") == "/dev/pts/0\nterm-ok\n"
