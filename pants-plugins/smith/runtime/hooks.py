"""OCI hooks: run each with the container state JSON on stdin, its args/env, and its timeout."""
import os

from smith.errors import SmithError, for_terminal
from smith.runtime import fastjson


def preload() -> None:
    """Import what run() needs, for callers that will lose the filesystem (pivot_root)."""
    import subprocess  # noqa: F401
    import selectors  # noqa: F401  (subprocess imports it lazily for communicate())


def run(kind: str, hooks: list, state: dict, fatal: bool = True) -> None:
    if not hooks:
        return
    import subprocess
    data = fastjson.dumps(state).encode()
    for i, h in enumerate(hooks):
        what = "hooks.%s[%d] (%s)" % (kind, i, h["path"])
        args = h.get("args") or [h["path"]]
        env = dict(e.split("=", 1) for e in h.get("env") or ())
        try:
            proc = subprocess.run(args, executable=h["path"], input=data, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=h.get("timeout"))
            err = None if proc.returncode == 0 else "exited with status %d: %s" % (
                proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace").strip()[-500:])
        except subprocess.TimeoutExpired:
            err = "timed out after %d s" % h["timeout"]
        except OSError as e:
            err = "could not run: %s" % e.strerror
        if err:
            msg = "%s %s" % (what, err)
            if fatal:
                raise SmithError(msg)
            os.write(2, ("smith-runtime: warning: %s\n" % for_terminal(msg)).encode("utf-8", "replace"))  # quotes the hook's output
