"""`exec`: start another process inside a running container (runc's setns path).

The runtime points its children's pid namespace at the container's, forks once, and the
child joins the cgroups and the other namespaces (user first, mount last: entering the
mount namespace also moves the root), then applies the process spec and execs.
"""
import os

from smith.errors import SmithError
from smith.runtime import state
from smith.runtime.channel import Channel

NS_FILES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
            "cgroup": "cgroup", "time": "time", "mount": "mnt"}
ORDER = ["user", "ipc", "uts", "network", "cgroup", "time", "mount"]


def _open_namespaces(pid: int, config: dict) -> dict:
    fds = {}
    for ns in (config.get("linux") or {}).get("namespaces") or ():
        name = NS_FILES.get(ns["type"])
        if not name:
            continue
        theirs = "/proc/%d/ns/%s" % (pid, name)
        try:
            if os.stat(theirs).st_ino == os.stat("/proc/self/ns/" + name).st_ino:
                continue  # shared with us (setns into our own user ns would fail)
            fds[ns["type"]] = os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SmithError("container init (pid %d) is gone; cannot exec" % pid) from None
    return fds


def run(root: str, cid: str, process: dict, detach: bool, pid_file, console_socket) -> int:
    """Start process in the container; returns its pid (detach) or waits and returns its status."""
    from smith.runtime import cgroups, libc
    with state.Container(root, cid, lock=False) as c:
        status = c.status()
        if status not in ("running", "created"):
            raise SmithError('cannot exec in container "%s": it is %s' % (cid, status))
        config = c.state["config"]
        init_pid = c.pid
        dirs = c.state.get("cgroup_dirs") or {}
    if process.get("terminal") and not console_socket:
        raise SmithError("exec --tty (process.terminal) needs --console-socket PATH")
    seccomp_filter = None
    if (config.get("linux") or {}).get("seccomp"):
        from smith.runtime import seccomp
        seccomp_filter = seccomp.build(config["linux"]["seccomp"], cache_root=root)
    fds = _open_namespaces(init_pid, config)
    console_fd = -1
    if console_socket:
        from smith.runtime import console
        console_fd = console.connect(console_socket)
    chan = Channel()
    own = -1
    if "pid" in fds:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        libc.setns(fds["pid"], libc.CLONE_NEWPID)
    ctx = {}
    try:
        pid = cgroups.spawn(dirs, ctx)
        if pid == 0:
            _child(chan.as_child(), fds, dirs, ctx["v2_placed"], config, process, console_fd, seccomp_filter)
    finally:
        if own >= 0:
            libc.setns(own, libc.CLONE_NEWPID)
            os.close(own)
    chan.as_parent()
    for fd in fds.values():
        os.close(fd)
    if console_fd >= 0:
        os.close(console_fd)
    msg = chan.recv()  # "" = the pipe closed on exec: the program runs
    chan.close()
    if msg:
        os.waitpid(pid, 0)
        raise SmithError(msg[2:] if msg.startswith("E ") else msg)
    if pid_file:
        state.write_pid_file(pid_file, pid)
    if detach:
        return 0
    from smith.runtime.commands.run import exit_code, forward_signals
    forward_signals(pid)
    _, status = os.waitpid(pid, 0)
    return exit_code(status)


def _child(chan: Channel, fds: dict, dirs: dict, v2_placed: bool, config: dict, process: dict,
           console_fd: int, seccomp) -> None:
    try:
        from smith.runtime import cgroups, identity, init, libc, rootfs
        if process.get("terminal"):
            from smith.runtime import console
        if seccomp is not None:
            from smith.runtime import seccomp as sc
        cgroups.enter(dirs, v2_placed)
        init.cloexec_from(3)
        for t in ORDER:
            if t in fds:
                libc.setns(fds[t], init.NS_FLAGS[t])
        if process.get("terminal"):
            os.setsid()
            console.setup_child(console_fd, process)
        identity.set_rlimits(process.get("rlimits"))
        exe = identity.find_executable(process["args"][0], process.get("env"))
        env = init._env(identity.with_home(process.get("env"), process["user"]["uid"]))
        nnp = process.get("noNewPrivileges")
        if seccomp is not None and not nnp:
            sc.load(seccomp)
        identity.finalize(process)
        rootfs.enter_cwd(process.get("cwd") or "/")  # confined to the container's root
        if seccomp is not None and nnp:
            sc.load(seccomp)
        os.execve(exe, process["args"], env)
    except BaseException as e:
        from smith.runtime import init
        init._fail(chan, e)
    os._exit(127)
