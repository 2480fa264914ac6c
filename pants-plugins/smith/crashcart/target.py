"""Find the process crashcart enters: a container's init process, or a host PID.

smith-runtime keeps <root>/<id>/state.json with "pid" and "pid_start" (smith.runtime.state);
runc keeps <root>/<id>/state.json with "init_process_pid" and "init_process_start". The start
time (field 22 of /proc/PID/stat) tells a live init from a recycled pid.

A state directory is written by whoever can write the runtime's root, so it is read like any other
input from a stranger: the container's directory and its state.json are opened without following
symlinks (a link to another container's or a host file is refused), the file is size-capped, and
the JSON must hold the fields with the types expected.
"""
import errno
import os
import stat
from typing import NamedTuple, Optional

from smith import safe_json
from smith.errors import SmithError
from smith.linux import start_time

MAX_STATE_BYTES = 1 << 20  # runc's and our state.json are a few KiB

SMITH_ROOT = "/run/smith-runtime"
RUNC_ROOT = "/run/runc"


class Target(NamedTuple):
    pid: int
    what: str  # for messages: 'container "web" (runc)' or 'process 123'


def _read_state(root: str, cid: str) -> Optional[dict]:
    if not cid or cid in (".", "..") or "/" in cid or "\0" in cid:
        return None
    where = os.path.join(root, cid, "state.json")
    try:
        dir_fd = os.open(os.path.join(root, cid), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SmithError("%s: the container's state directory is a symlink or not a directory; "
                             "refusing to follow it" % os.path.join(root, cid)) from None
        raise SmithError("cannot read the state of container %r in %s: %s" % (cid, root, e.strerror)) from None
    try:
        try:
            fd = os.open("state.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise SmithError("%s: a symlink; refusing to follow it" % where) from None
            raise SmithError("%s: cannot read (%s)" % (where, e.strerror)) from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SmithError("%s: not a regular file" % where)
            data = f.read(MAX_STATE_BYTES + 1)
    finally:
        os.close(dir_fd)
    return safe_json.loads(data, where, MAX_STATE_BYTES)


def _pid_field(state: dict, key: str, where: str) -> int:
    value = state.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 22:
        raise SmithError("%s: %r must be a process id (a positive integer), not %r" % (where, key, value))
    return value


def _container(cid: str, runtime: str, root: str, pid_key: str, start_key: str) -> Optional[Target]:
    state = _read_state(root, cid)
    if state is None:
        return None
    what = 'container "%s" (%s, state in %s)' % (cid, runtime, root)
    pid = _pid_field(state, pid_key, os.path.join(root, cid, "state.json"))
    if pid <= 0 or start_time(pid) != str(state.get(start_key)):
        raise SmithError("%s is not running: its init process %d has exited; start it again "
                         "or pick a running container" % (what, pid))
    return Target(pid, what)


def find_target(target: str, smith_root: str = SMITH_ROOT, runc_root: str = RUNC_ROOT) -> Target:
    found = [t for t in (
        _container(target, "smith-runtime", smith_root, "pid", "pid_start"),
        _container(target, "runc", runc_root, "init_process_pid", "init_process_start"),
    ) if t is not None]
    if len(found) > 1:
        raise SmithError("%s and %s share the id; pass --runtime-root or --runc-root to pick one"
                         % (found[0].what, found[1].what))
    if found:
        return found[0]
    if target.isdigit():
        pid = int(target)
        if pid <= 0 or start_time(pid) is None:
            raise SmithError("process %s does not exist or has exited; pass a running container's "
                             "id or a live PID" % target)
        return Target(pid, "process %d" % pid)
    raise SmithError('no container "%s": not in %s (smith-runtime) nor %s (runc); check the id '
                     "(`runc list`) or pass --runtime-root/--runc-root"
                     % (target, smith_root, runc_root))
