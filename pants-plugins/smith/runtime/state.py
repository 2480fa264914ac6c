"""Per-container state directory `<root>/<id>/`: state.json, exec.fifo, and a flock.

Status is derived the way runc derives it: no live init process -> stopped; the exec fifo
still present -> created; otherwise running. The init process is identified by pid plus its
start time (field 22 of /proc/PID/stat), so a recycled pid is never mistaken for it.
"""
import fcntl
import os
import time

from smith.errors import SmithError
from smith.linux import start_time
from smith.runtime import fastjson

DEFAULT_ROOT = "/run/smith-runtime"
STATE = "state.json"
FIFO = "exec.fifo"


def check_id(cid: str) -> None:
    ok = cid and cid not in (".", "..") and all(c.isalnum() or c in "_+-." for c in cid)
    if not ok:
        raise SmithError("invalid container id %r: use letters, digits, '_', '+', '-' and '.'" % cid)


def container_dir(root: str, cid: str) -> str:
    check_id(cid)
    return os.path.join(root, cid)


class Container:
    """A locked view of one container's state directory."""

    def __init__(self, root: str, cid: str, lock: bool = True, record: dict = None):
        """record: the state.json content when the caller just wrote it (saves a re-read)."""
        self.id = cid
        self.dir = container_dir(root, cid)
        self.fd = -1
        try:
            self.fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if lock:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            if record is not None and os.path.exists(os.path.join(self.dir, STATE)):
                self.state = record
                return
            with open(os.path.join(self.dir, STATE), "rb") as f:
                self.state = fastjson.loads(f.read())
        except FileNotFoundError:
            self.close()
            raise SmithError('container "%s" does not exist (no state in %s)' % (cid, self.dir)) from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def pid(self) -> int:
        return int(self.state.get("pid") or 0)

    def alive(self) -> bool:
        started = start_time(self.pid) if self.pid > 0 else None
        return started is not None and started == self.state.get("pid_start")

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if os.path.exists(os.path.join(self.dir, FIFO)):
            return "created"
        return "running"

    def oci_state(self) -> dict:
        """The runtime-spec state of this container."""
        status = self.status()
        st = {"ociVersion": self.state["ociVersion"], "id": self.id, "status": status,
              "pid": self.pid if status != "stopped" else 0,
              "bundle": self.state["bundle"], "annotations": self.state.get("annotations") or {}}
        return st


def remove_dir(path: str) -> None:
    """Remove a state directory (flat: state.json, exec.fifo, temp files); shutil costs ~20 ms
    of imports."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def write_json_atomic(path: str, value) -> None:
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(fastjson.dumps(value))
    os.rename(tmp, path)


def write_pid_file(path: str, pid: int) -> None:
    """runc writes the pid file atomically (temp name + rename) with no newline."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def iso_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (".%06dZ" % int((t % 1) * 1e6))
