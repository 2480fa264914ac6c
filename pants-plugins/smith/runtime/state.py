"""Per-container state directory `<root>/<id>/`: state.json, exec.fifo, and a flock.

Status is derived the way runc derives it: no live init process -> stopped; the exec fifo
still present -> created; otherwise running. The init process is identified by pid plus its
start time (field 22 of /proc/PID/stat), so a recycled pid is never mistaken for it.
"""
import fcntl
import time

from smith.errors import SmithError
from smith.linux import start_time
from smith.atomic import write_file  # imports no os either
from smith.runtime import fastjson
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)

DEFAULT_ROOT = "/run/smith-runtime"
STATE = "state.json"
FIFO = "exec.fifo"


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
MAX_ID = 255  # one directory name


def check_id(cid: str) -> None:
    ok = cid and cid not in (".", "..") and len(cid) <= MAX_ID and all(c in _ID_CHARS for c in cid)
    if not ok:
        raise SmithError("invalid container id %r: use 1 to %d ASCII letters, digits, '_', '+', '-' "
                         "and '.'" % (cid[:80] + ("..." if len(cid) > 80 else ""), MAX_ID))


def container_dir(root: str, cid: str) -> str:
    check_id(cid)
    return os.path.join(root, cid)


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir(root: str, cid: str) -> int:
    """The state directory <root>/<id> as a descriptor; a symlink there is refused (never
    followed: `delete` would empty whatever directory it points to)."""
    check_id(cid)
    try:
        return os.open(os.path.join(root, cid), _DIR)
    except OSError as e:
        if e.errno in (40, 20):  # ELOOP, ENOTDIR: a symlink or a file
            raise SmithError('container "%s": %s is not a state directory (a symlink or a file); '
                             'refusing to use it' % (cid, os.path.join(root, cid))) from None
        raise


class Container:
    """A locked view of one container's state directory."""

    def __init__(self, root: str, cid: str, lock: bool = True, record: dict = None):
        """record: the state.json content when the caller just wrote it (saves a re-read)."""
        self.id = cid
        self.root = root
        self.dir = container_dir(root, cid)
        self.fd = -1
        try:
            self.fd = open_dir(root, cid)
            if lock:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            if record is not None and self.exists(STATE):
                self.state = record
                return
            try:
                fd = os.open(STATE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
            except OSError as e:
                if e.errno != 40:
                    raise
                raise SmithError('container "%s": %s/%s is a symlink; refusing to read it'
                                 % (cid, self.dir, STATE)) from None
            with open(fd, "rb") as f:
                self.state = fastjson.loads(f.read())
        except FileNotFoundError:
            self.close()
            raise SmithError('container "%s" does not exist (no state in %s)' % (cid, self.dir)) from None
        except BaseException:
            self.close()
            raise

    def exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

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
        if self.exists(FIFO):
            return "created"
        return "running"

    def oci_state(self) -> dict:
        """The runtime-spec state of this container."""
        status = self.status()
        st = {"ociVersion": self.state["ociVersion"], "id": self.id, "status": status,
              "pid": self.pid if status != "stopped" else 0,
              "bundle": self.state["bundle"], "annotations": self.state.get("annotations") or {}}
        return st


def remove_dir(root: str, cid: str, force: bool = False) -> None:
    """Remove the state directory <root>/<id> (flat: state.json, exec.fifo, temp files) through
    its descriptor; shutil costs ~20 ms of imports. A symlink there is refused, or with force
    removed itself (as runc's delete --force does), never followed."""
    try:
        fd = open_dir(root, cid)
    except FileNotFoundError:
        return
    except SmithError:
        if not force:
            raise
        try:
            os.unlink(os.path.join(root, cid))  # the symlink (or file) itself
        except FileNotFoundError:
            pass
        return
    try:
        for name in os.listdir(fd):
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)
    try:
        os.rmdir(os.path.join(root, cid))
    except FileNotFoundError:
        pass


def write_json_atomic(path: str, value) -> None:
    # Modes from the umask, as runc's (perms=None); the state directory exists already.
    write_file(path, fastjson.dumps(value), perms=None, parents=False)


def write_pid_file(path: str, pid: int) -> None:
    """runc writes the pid file atomically (temp name + rename) with no newline."""
    write_file(os.path.abspath(path), str(pid), perms=None, parents=False)


def iso_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (".%06dZ" % int((t % 1) * 1e6))
