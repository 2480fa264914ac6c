"""The runtime side of the container lifecycle: create, start, kill, delete (runc's libcontainer).

create forks the setup processes (see init.py), answers their requests (cgroups, id maps,
createRuntime hooks) and records state.json once the init process waits on exec.fifo.
Any failure kills what was started and removes the cgroups and the state directory, so a
failed create leaves nothing behind.
"""
import fcntl
import time

from smith.errors import SmithError
from smith.linux import start_time
from smith.runtime import cgroups, spec, state
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)
from smith.runtime.channel import Channel
from smith.runtime.state import FIFO, STATE

SIGKILL = 9


def create(root: str, cid: str, bundle: str, pid_file: str = None,
           console_socket: str = None, no_pivot: bool = False, start_now: bool = False,
           record_out: dict = None) -> int:
    """Set the container up and leave its init blocked on exec.fifo; returns the init pid.

    start_now (for `run`): no exec.fifo; init execs as soon as it is ready, and this returns
    once it has (the same order of events as create + start, one handoff less)."""
    state.check_id(cid)
    bundle = os.path.abspath(bundle)
    config = spec.load(bundle)
    _check_root(config)
    process = config["process"]
    if process.get("terminal") and not console_socket:
        raise SmithError("process.terminal is true but no --console-socket was given: pass "
                         "--console-socket PATH or set process.terminal to false in config.json")
    linux = config.get("linux") or {}
    os.makedirs(root, 0o700, exist_ok=True)
    cdir = state.container_dir(root, cid)
    try:
        os.mkdir(cdir, 0o711)
    except FileExistsError:
        raise SmithError('container "%s" already exists (state in %s); delete it or pick another id'
                         % (cid, cdir)) from None
    lock_fd = state.open_dir(root, cid)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    pids = []  # processes to kill if anything fails
    made = []  # cgroup directories to remove if anything fails (cgroups.create appends)
    opened = []
    try:
        state_fd = -1
        if not start_now:
            os.mkfifo(FIFO, 0o622, dir_fd=lock_fd)
            os.chmod(FIFO, 0o622, dir_fd=lock_fd)  # mkfifo honours the umask
            state_fd = state.open_dir(root, cid)  # its own open file: the flock is lock_fd's
            opened.append(state_fd)
        dirs = cgroups.plan(cid, linux.get("cgroupsPath", ""))
        two_stage = any(ns.get("type") == "user" for ns in linux.get("namespaces") or ())
        # Without a user namespace init is cloned straight into its v2 directory, and the v1
        # hierarchies are made and limited while it starts setting its root up (on another CPU);
        # it joins them on "G", and nothing of the container runs before "S".
        v2_dirs, v1_dirs = cgroups.split(dirs)
        cgroups.create(v2_dirs if not two_stage else dirs, made)
        if two_stage:
            cgroups.apply(dirs, linux.get("resources") or {})
        console_fd = -1
        if console_socket:
            from smith.runtime import console
            console_fd = console.connect(console_socket)
            opened.append(console_fd)
        new_ns, join_fds = [], {}
        for ns in linux.get("namespaces") or ():
            if ns.get("path"):
                join_fds[ns["type"]] = fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
                opened.append(fd)
            else:
                new_ns.append(ns["type"])
        seccomp_filter = None
        if linux.get("seccomp"):  # built here: errors come before any process exists
            from smith.runtime import seccomp
            seccomp_filter = seccomp.build(linux["seccomp"], cache_root=root)
        hook_state = {"ociVersion": config["ociVersion"], "id": cid, "status": "creating",
                      "pid": 0, "bundle": bundle, "annotations": config.get("annotations") or {}}
        chan = Channel()
        ctx = {"chan": chan, "config": config, "bundle": bundle, "new_ns": new_ns,
               "join_fds": join_fds, "close_fds": [lock_fd], "state_fd": state_fd,
               "console_fd": console_fd, "no_pivot": no_pivot, "cgroup_dirs": dirs,
               "hook_state": hook_state, "seccomp": seccomp_filter,
               "root_mapped": any(m["containerID"] == 0 for m in linux.get("uidMappings") or ())}
        init_pid = 0
        if two_stage:
            pid1 = cgroups.spawn(dirs, ctx)
            if pid1 == 0:
                from smith.runtime import init
                init.stage1(ctx)
            pids.append(pid1)
        else:
            ctx["cgroups_go"] = True
            init_pid = _fork_init(ctx, new_ns, join_fds)
            pids.append(init_pid)
        chan.as_parent()
        if not two_stage:
            cgroups.create(v1_dirs, made)
            cgroups.apply(dirs, linux.get("resources") or {})
            _send(chan, "G")  # init joins them itself (fast: see cgroups.enter) and may bind them
        for fd in opened:
            os.close(fd)
        opened = []
        while not init_pid:
            kind, arg = _recv(chan)
            if kind == "U":
                _write_id_maps(pid1, linux)
                _send(chan, "M")
            elif kind == "P":
                init_pid = int(arg)
                pids.append(init_pid)
                os.waitpid(pid1, 0)
                pids.remove(pid1)
        pid_start = start_time(init_pid)  # init waits for "S": it cannot have exited
        if "oomScoreAdj" in process:
            _oom_score_adj(init_pid, process["oomScoreAdj"])
        _send(chan, "S %d" % init_pid)
        while True:
            kind, arg = _recv(chan)
            if kind == "H":
                from smith.runtime import hooks
                hook_state["pid"] = init_pid
                hooks_cfg = config.get("hooks") or {}
                hooks.run("prestart", hooks_cfg.get("prestart"), hook_state)
                hooks.run("createRuntime", hooks_cfg.get("createRuntime"), hook_state)
                _send(chan, "C")
            elif kind == "R":
                break
        record = {"ociVersion": config["ociVersion"], "id": cid, "pid": init_pid,
                  "pid_start": pid_start, "bundle": bundle,
                  "rootfs": config["root"]["path"], "created": state.iso_now(),
                  "annotations": config.get("annotations") or {}, "owner": "",
                  "cgroup_dirs": dirs, "cgroup_made": made, "config": config}
        state.write_json_atomic(os.path.join(cdir, STATE), record)
        if record_out is not None:
            record_out.update(record)
        if pid_file:
            state.write_pid_file(pid_file, init_pid)
        if start_now:
            # init execs right after "R": the channel closes (close-on-exec) once it has.
            msg = chan.recv()
            if msg:
                raise SmithError(msg[2:] if msg.startswith("E ") else msg)
        chan.close()
        return init_pid
    except BaseException:
        for fd in opened:
            os.close(fd)
        for pid in pids:
            _kill_wait(pid)
        try:
            cgroups.remove(made)
        finally:
            state.remove_dir(root, cid)
        raise
    finally:
        os.close(lock_fd)


def _check_root(config: dict) -> None:
    """What runc refuses about the root and the mount namespace, before anything is started
    (here, not in rootfs.py: init imports that while the runtime makes the cgroups)."""
    linux = config.get("linux") or {}
    if config["root"]["path"] == "/":  # spec.load resolved symlinks
        raise SmithError("root.path: the root filesystem is the host's / (after resolving symlinks); "
                         "a container needs a root directory of its own")
    if not any(ns.get("type") == "mount" for ns in linux.get("namespaces") or ()):
        for key in ("maskedPaths", "readonlyPaths"):
            if linux.get(key):
                raise SmithError("linux.%s: unable to restrict sys entries without a private MNT "
                                 "namespace (as runc): add {\"type\": \"mount\"} to linux.namespaces "
                                 "or drop linux.maskedPaths and linux.readonlyPaths" % key)


def _fork_init(ctx: dict, new_ns: list, join_fds: dict) -> int:
    """Fork init straight into its pid namespace: unshare (or setns) CLONE_NEWPID affects only
    our children, and we switch back to our own pid namespace right after the fork."""
    from smith.runtime import libc
    own = -1
    if "pid" in new_ns or "pid" in join_fds:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if "pid" in join_fds:
            libc.setns(join_fds["pid"], libc.CLONE_NEWPID)
        else:
            libc.unshare(libc.CLONE_NEWPID)
    try:
        pid = cgroups.spawn(ctx["cgroup_dirs"], ctx)
        if pid == 0:
            from smith.runtime import init
            init.single(ctx)
    finally:
        if own >= 0:
            libc.setns(own, libc.CLONE_NEWPID)
            os.close(own)
    return pid


def _send(chan: Channel, msg: str) -> None:
    """Send to init; if it is gone, raise the error it left on the channel."""
    try:
        chan.send(msg)
    except BrokenPipeError:
        _recv(chan)
        raise SmithError("container init exited during setup") from None


def _recv(chan: Channel) -> tuple:
    msg = chan.recv()
    if not msg:
        raise SmithError("container init exited during setup without saying why")
    kind, _, arg = msg.partition(" ")
    if kind == "E":
        raise SmithError(arg)
    return kind, arg


def _write_id_maps(pid: int, linux: dict) -> None:
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        lines = "".join("%d %d %d\n" % (m["containerID"], m["hostID"], m["size"]) for m in linux.get(key) or ())
        if not lines:
            continue
        try:
            with open("/proc/%d/%s" % (pid, name), "w") as f:
                f.write(lines)
        except OSError as e:
            raise SmithError("linux.%s: the kernel refused the mapping %r: %s; check that ranges do "
                             "not overlap" % (key, lines.strip(), e.strerror)) from None


def _oom_score_adj(pid: int, value: int) -> None:
    try:
        with open("/proc/%d/oom_score_adj" % pid, "w") as f:
            f.write(str(value))
    except OSError as e:
        raise SmithError("process.oomScoreAdj %d: %s (lowering it needs CAP_SYS_RESOURCE)"
                         % (value, e.strerror)) from None


def _kill_wait(pid: int) -> None:
    try:
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # not our child (init after stage1 exited): poll until it is gone
        for _ in range(2000):
            if start_time(pid) is None:
                return
            time.sleep(0.001)


def start(root: str, cid: str) -> None:
    """Let the created container exec its program: read exec.fifo, then remove it."""
    with state.Container(root, cid) as c:
        status = c.status()
        if status != "created":
            raise SmithError('cannot start container "%s": it is %s, not created' % (cid, status))
        fd = os.open(FIFO, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=c.fd)
        try:
            _await_fifo(c, fd)
        finally:
            os.close(fd)
        os.unlink(FIFO, dir_fd=c.fd)
        _poststart(c)


def poststart(root: str, cid: str, record: dict = None) -> None:
    """The poststart hooks of a container that has just started."""
    if record is not None and not (record["config"].get("hooks") or {}).get("poststart"):
        return
    with state.Container(root, cid, lock=False, record=record) as c:
        _poststart(c)


def _poststart(c: "state.Container") -> None:
    hooks = (c.state.get("config") or {}).get("hooks") or {}
    if hooks.get("poststart"):
        from smith.runtime import hooks as hookrun
        st = c.oci_state()
        st.update(status="running", pid=c.pid)  # even if the program already finished
        hookrun.run("poststart", hooks["poststart"], st, fatal=False)


def _await_fifo(c: "state.Container", fd: int) -> None:
    """Wait for init's "0" on the fifo, checking that init is still alive while waiting."""
    import select
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        if poller.poll(100):
            data = os.read(fd, 1)
            if data == b"0":
                break
            raise SmithError('container "%s" init died before it could start' % c.id)
        if not c.alive():
            raise SmithError('container "%s" init died before it could start' % c.id)
    # init closes its end when it execs (close-on-exec): wait for that, so `start` returns
    # only once the program runs (or init died).
    os.set_blocking(fd, True)
    os.read(fd, 1)


def kill(root: str, cid: str, sig: int, all_procs: bool = False) -> None:
    with state.Container(root, cid) as c:
        status = c.status()
        if status == "stopped" and not all_procs:
            raise SmithError('cannot kill container "%s": it is not running' % cid)
        targets = [c.pid] if status != "stopped" else []
        if all_procs:
            targets = sorted(set(targets) | set(cgroups.pids(c.state.get("cgroup_dirs") or {})))
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def destroy(c: "state.Container") -> None:
    """Kill whatever is left, run poststop hooks, remove cgroups and the state directory."""
    dirs = c.state.get("cgroup_dirs") or {}
    if c.alive():
        try:
            os.kill(c.pid, SIGKILL)
        except ProcessLookupError:
            pass
    for pid in cgroups.pids(dirs):
        try:
            os.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while (c.alive() or cgroups.pids(dirs)) and time.monotonic() < deadline:
        time.sleep(0.002)
    hooks = (c.state.get("config") or {}).get("hooks") or {}
    if hooks.get("poststop"):
        from smith.runtime import hooks as hookrun
        st = c.oci_state()
        st["status"] = "stopped"
        hookrun.run("poststop", hooks["poststop"], st, fatal=False)
    try:
        cgroups.remove(c.state.get("cgroup_made") or [])
    finally:
        state.remove_dir(c.root, c.id)


def delete(root: str, cid: str, force: bool = False) -> None:
    try:
        c = state.Container(root, cid)
    except SmithError:
        # Like runc: a directory without state.json is the debris of an aborted create (a
        # symlink is refused; with --force it is removed itself, never followed).
        state.remove_dir(root, cid, force)
        if force:
            return
        raise
    with c:
        status = c.status()
        if status == "running" and not force:
            raise SmithError('cannot delete container "%s" that is not stopped: running '
                             '(stop it with kill, or use delete --force)' % cid)
        destroy(c)
