"""Drive real `./pants` runs on throwaway copies of this repository (end-to-end tests)."""
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

from smith.testutil.debian import PATH


def source_repo() -> Path:
    """The checkout under test (Pants passes it in; see [test].extra_env_vars in pants.toml)."""
    root = os.environ.get("SMITH_REPO")
    if not root or not Path(root, "pants.toml").exists():
        raise RuntimeError("SMITH_REPO must point at the smith checkout (set by pants.toml)")
    return Path(root)


def copy_repo(dest: Path) -> Path:
    """Copy the tracked and untracked-but-not-ignored files of the checkout (its working state)."""
    src = source_repo()
    listed = subprocess.run(
        ["git", "-C", str(src), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, stdout=subprocess.PIPE, env={"PATH": PATH},
    ).stdout.decode().split("\0")
    for rel in filter(None, listed):
        s = src / rel
        if not s.exists() and not s.is_symlink():
            continue  # deleted in the working tree
        d = dest / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(s, d, follow_symlinks=False)
    return dest


def pants(repo: Path, *args: str, env: Optional[Dict[str, str]] = None, umask: Optional[int] = None,
          check: bool = True, merge_stderr: bool = True, pantsd: bool = False,
          timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    """Run `./pants --no-pantsd ARGS` in `repo`; stdout+stderr are captured together unless asked.

    pantsd=True: one pantsd serves a test module's runs (a cold start is most of a run on a loaded
    machine); the module stops it with stop_pantsd()."""
    run_env = {"PATH": PATH, "HOME": os.path.expanduser("~"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    run_env.update(env or {})
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    proc = subprocess.run(
        ["./pants", "--pantsd" if pantsd else "--no-pantsd", *args], cwd=repo, env=run_env,
        preexec_fn=preexec, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        output = proc.stdout if merge_stderr else proc.stderr
        raise AssertionError("./pants %s failed (%d):\n%s" % (" ".join(args), proc.returncode, output[-6000:]))
    return proc


def stop_pantsd(copy: Path) -> None:
    """End the pantsd of our copy (by its pid file), and only that one."""
    for pid_file in copy.glob(".pids/**/pantsd/pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass


def started_processes(log: str) -> List[str]:
    """Descriptions of the processes Pants really ran (cache hits are not 'Starting')."""
    return re.findall(r"\[INFO\] Starting: (.+)", log)


def counters(log: str) -> Dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", log, re.M)}


def tree_bytes(root: Path) -> Dict[str, bytes]:
    """Every file under root (relative path -> bytes): for byte-for-byte comparisons."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def completed_processes(log: str) -> List[str]:
    """Descriptions of the processes that ran to the end locally. With a remote cache Pants starts
    the local process while it asks the cache and cancels it on a hit ('Canceled', not 'Completed')."""
    return re.findall(r"\[INFO\] Completed: (.+)", log)


def age_files(root: Path, when: float) -> None:
    """Set every file's mtime/atime to `when` (another clock: file times must not reach the image)."""
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.utime(p, (when, when))


def manifest_digest(layout: Path) -> str:
    """The image digest of an OCI layout: its (first) index entry."""
    import json
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


REMOTE_CACHE_INSTANCE = "smith"


def remote_cache_env(state: Path, port: int) -> Dict[str, str]:
    """Environment for remote-cache/start|stop: a private state dir and port, a shared venv cache."""
    return {"PATH": PATH, "HOME": os.path.expanduser("~"), "SMITH_REMOTE_CACHE_STATE": str(state),
            "SMITH_REMOTE_CACHE_PORT": str(port), "SMITH_REMOTE_CACHE_VENVS": "/tmp/smith-test-cache/buildgrid"}


def remote_cache_ctl(action: str, state: Path, port: int) -> str:
    """Run remote-cache/start or remote-cache/stop of the checkout under test."""
    proc = subprocess.run([str(source_repo() / "remote-cache" / action)], env=remote_cache_env(state, port),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError("remote-cache/%s failed (%d):\n%s" % (action, proc.returncode, proc.stdout[-4000:]))
    return proc.stdout


def remote_cache_options(port: int, read: bool = True, write: bool = True) -> List[str]:
    return ["--remote-cache-read" if read else "--no-remote-cache-read",
            "--remote-cache-write" if write else "--no-remote-cache-write",
            "--remote-store-address=grpc://127.0.0.1:%d" % port,
            "--remote-instance-name=" + REMOTE_CACHE_INSTANCE, "--remote-cache-rpc-timeout-millis=5000"]


def free_port() -> int:
    """A free TCP port whose successor is free too (the remote cache's redis uses PORT+1)."""
    import socket
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


# Examples whose images every e2e run packages: (target, file it needs to be buildable).
# redis/nginx join once their package lockfiles are committed.
EXAMPLES = [
    ("examples/hello:hello", "examples/hello/BUILD"),
    ("examples/cat:cat", "examples/cat/coreutils.lock.json"),
    ("examples/redis:redis", "examples/redis/redis-pkgs.lock.json"),
    ("examples/nginx:nginx", "examples/nginx/nginx-pkgs.lock.json"),
]


def buildable_examples(repo: Path) -> List[str]:
    return [target for target, needs in EXAMPLES if (repo / needs).exists()]


def example_layout(repo: Path, target: str) -> Path:
    """dist/ path of an image target (`examples/hello:hello` -> dist/examples.hello/hello)."""
    path, name = target.split(":")
    return repo / "dist" / path.replace("/", ".") / name


# The smith steps (rules/*.py descriptions); Pants' own processes (pex, interpreter) are not ours.
SMITH_STEPS = ("Building layer", "Building the layer", "Assembling image", "Assembling minimized image",
               "Tracing the ELF closure", "Fetching and extracting ", "Merging ", "Minimizing", "SBOM",
               "Indexing image")


def smith_steps(descriptions: List[str]) -> List[str]:
    return sorted(d for d in descriptions if d.startswith(SMITH_STEPS))


def umoci_ref(layout: Path, tag: str, work: Path) -> str:
    """LAYOUT:TAG for umoci, which cannot pick a platform: a multi-platform image (an OCI index,
    e.g. examples/redis:redis) is first copied, its linux/amd64 image only, by skopeo into `work`."""
    index = json.loads((Path(layout) / "index.json").read_text())
    entry = next(m for m in index["manifests"] if (m.get("annotations") or {}).get(
        "org.opencontainers.image.ref.name") == tag)
    if entry["mediaType"] != "application/vnd.oci.image.index.v1+json":
        return "%s:%s" % (layout, tag)
    from smith.testutil.debian import require_tools, tool_env
    require_tools("skopeo")
    subprocess.run(["skopeo", "--override-arch", "amd64", "copy", "oci:%s:%s" % (layout, tag),
                    "oci:%s:%s" % (work, tag)], check=True, env=tool_env(), stdout=subprocess.PIPE)
    return "%s:%s" % (work, tag)
