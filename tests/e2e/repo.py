"""Drive real `./pants` runs on throwaway copies of this repository (end-to-end tests)."""
import os
import re
import shutil
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
          check: bool = True, merge_stderr: bool = True) -> subprocess.CompletedProcess:
    """Run `./pants --no-pantsd ARGS` in `repo`; stdout+stderr are captured together unless asked."""
    run_env = {"PATH": PATH, "HOME": os.path.expanduser("~"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    run_env.update(env or {})
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    proc = subprocess.run(
        ["./pants", "--no-pantsd", *args], cwd=repo, env=run_env, preexec_fn=preexec,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True,
    )
    if check and proc.returncode != 0:
        output = proc.stdout if merge_stderr else proc.stderr
        raise AssertionError("./pants %s failed (%d):\n%s" % (" ".join(args), proc.returncode, output[-6000:]))
    return proc


def started_processes(log: str) -> List[str]:
    """Descriptions of the processes Pants really ran (cache hits are not 'Starting')."""
    return re.findall(r"\[INFO\] Starting: (.+)", log)


def counters(log: str) -> Dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", log, re.M)}


def tree_bytes(root: Path) -> Dict[str, bytes]:
    """Every file under root (relative path -> bytes): for byte-for-byte comparisons."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
