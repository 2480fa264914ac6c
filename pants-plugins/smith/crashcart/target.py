"""Find the process crashcart enters: a container's init process, or a host PID.

smith-runtime keeps <root>/<id>/state.json with "pid" and "pid_start" (smith.runtime.state);
runc keeps <root>/<id>/state.json with "init_process_pid" and "init_process_start". The start
time (field 22 of /proc/PID/stat) tells a live init from a recycled pid.
"""
import json
import os
from typing import NamedTuple, Optional

from smith.errors import SmithError
from smith.linux import start_time

SMITH_ROOT = "/run/smith-runtime"
RUNC_ROOT = "/run/runc"


class Target(NamedTuple):
    pid: int
    what: str  # for messages: 'container "web" (runc)' or 'process 123'


def _read_state(root: str, cid: str) -> Optional[dict]:
    if not cid or cid in (".", "..") or "/" in cid:
        return None
    try:
        with open(os.path.join(root, cid, "state.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise SmithError("cannot read the state of container %r in %s: %s" % (cid, root, e))


def _container(cid: str, runtime: str, root: str, pid_key: str, start_key: str) -> Optional[Target]:
    state = _read_state(root, cid)
    if state is None:
        return None
    what = 'container "%s" (%s, state in %s)' % (cid, runtime, root)
    pid = int(state.get(pid_key) or 0)
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
