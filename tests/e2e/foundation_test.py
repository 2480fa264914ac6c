"""Issue 2 end to end: `./pants package` of examples/hello on copies of this repo.

Checks the result with the real tools (skopeo, umoci, runc), byte-for-byte reproducibility across
checkout path / umask / TZ / file times with the local cache off, and what a rebuild re-runs.
"""
import json
import os
import subprocess
import time
import uuid

import pytest

from e2e.repo import copy_repo, pants, started_processes, tree_bytes, umoci_ref
from smith.testutil.debian import require_tools, tool_env

HELLO = "examples/hello:hello"
LAYOUT = "dist/examples.hello/hello"


@pytest.fixture(scope="module")
def hello_a(repo_a):
    pants(repo_a, "package", HELLO)
    return repo_a / LAYOUT


def test_skopeo_umoci_and_runc_accept_the_image(hello_a, tmp_path):
    require_tools("skopeo", "umoci", "runc")
    env = tool_env()
    inspect = json.loads(subprocess.run(
        ["skopeo", "inspect", f"oci:{hello_a}:latest"], check=True, stdout=subprocess.PIPE, env=env,
    ).stdout)
    assert inspect["Architecture"] == "amd64" and inspect["Os"] == "linux"
    assert len(inspect["Layers"]) == 3  # skeleton + app + config
    index = json.loads((hello_a / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"

    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", umoci_ref(hello_a, "latest", tmp_path / "amd64"), str(bundle)],
                   check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rootfs = bundle / "rootfs"
    for d in ("read", "write", "run", "proc", "sys", "dev"):
        assert (rootfs / d).is_dir(), d
    st = os.lstat(rootfs / "usr/bin/hello")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (10, 10, 0o755)

    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["root"]["readonly"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    run = subprocess.run(["runc", "run", "--bundle", str(bundle), f"smith-e2e-hello-{os.getpid()}"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Hello from a smith microcontainer!\n"


def test_same_bytes_from_another_checkout_path_umask_tz_and_clock(hello_a, scratch):
    other = copy_repo(scratch / "b" / "deeper" / "path" / "smith")
    future = time.time() + 5 * 365 * 86400
    for p in other.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.utime(p, (future, future))
    # Local cache off: every smith Process really runs again in the other checkout.
    pants(other, "--no-local-cache", "package", HELLO, umask=0o077,
          env={"TZ": "Asia/Tokyo", "SOURCE_DATE_EPOCH": str(int(future))})
    a, b = tree_bytes(hello_a), tree_bytes(other / LAYOUT)
    assert sorted(a) == sorted(b)
    assert a == b, "layouts differ: %s" % [k for k in a if a[k] != b.get(k)]


def test_noop_rebuild_runs_nothing_and_one_file_reruns_one_layer(hello_a, repo_a):
    noop = pants(repo_a, "--stats-log", "package", HELLO).stdout
    smith_steps = ("Building layer", "Assembling image", "Indexing image")
    smith_runs = [p for p in started_processes(noop) if p.startswith(smith_steps)]
    assert smith_runs == [], noop[-3000:]

    motd = repo_a / "examples/hello/etc/motd"
    # A change no earlier run made: the machine's local cache outlives test runs.
    motd.write_text(motd.read_text() + "changed %s\n" % uuid.uuid4())
    changed = pants(repo_a, "--stats-log", "package", HELLO).stdout
    smith_runs = sorted(p for p in started_processes(changed) if p.startswith(smith_steps))
    # hello is amd64 + arm64: the config layer is the same file for both platforms (built once),
    # each platform's image is assembled again, and so is the index over them; the program's
    # layers do not run.
    assert smith_runs == ["Assembling image examples/hello:hello",
                          "Assembling image examples/hello:hello (linux/arm64)",
                          "Building layer examples/hello:config",
                          "Indexing image examples/hello:hello (linux/amd64, linux/arm64)"], changed[-3000:]


def test_readme_reference_matches_the_targets_help(repo_a, tmp_path):
    """README's field/goal reference is generated from `./pants help-all`; it must not drift."""
    help_json = tmp_path / "help.json"
    help_json.write_text(pants(repo_a, "help-all", merge_stderr=False).stdout)
    check = subprocess.run(
        ["python3", str(repo_a / "build-support/readme_reference.py"), "--check", str(help_json),
         str(repo_a / "README.md")],
        env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert check.returncode == 0, check.stdout
