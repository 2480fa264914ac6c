"""The container side of `create`: code that runs in the forked processes, never returns.

Without a user namespace the runtime unshares the pid namespace for its children and forks
init directly (`single`). With one, `stage1` creates the user namespace first (the runtime
writes the id maps), then the others, then forks init -- the first process of a new pid
namespace must be a child of the unsharing process.
stage2 (the container's init): builds the rootfs, pivots, sets hostname/sysctls/paths,
becomes the configured user, reports "ready", then blocks opening exec.fifo for writing
until `start` opens it for reading, and execs the program.
"""

from smith.errors import SmithError, for_terminal
from smith.runtime import libc
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)

NS_FLAGS = {
    "user": libc.CLONE_NEWUSER, "mount": libc.CLONE_NEWNS, "uts": libc.CLONE_NEWUTS,
    "ipc": libc.CLONE_NEWIPC, "network": libc.CLONE_NEWNET, "pid": libc.CLONE_NEWPID,
    "cgroup": libc.CLONE_NEWCGROUP, "time": libc.CLONE_NEWTIME,
}
JOIN_ORDER = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"]


def _fail(chan, exc: BaseException) -> None:
    if isinstance(exc, (SmithError, OSError)):
        msg = str(exc)
    else:
        msg = "internal error: %s: %s" % (type(exc).__name__, exc)
    if os.getenv("SMITH_RUNTIME_DEBUG"):
        try:
            import traceback  # fails after pivot_root unless already imported
            msg += " " + traceback.format_exc().replace("\n", " | ")
        except ImportError:
            pass
    try:
        chan.send("E " + msg)
    except OSError:
        os.write(2, ("smith-runtime: error: %s\n" % for_terminal(msg)).encode("utf-8", "replace"))
    os._exit(1)


def _join(ctx: dict, skip=()) -> None:
    for t in JOIN_ORDER:
        if t in ctx["join_fds"] and t not in skip:
            libc.setns(ctx["join_fds"][t], NS_FLAGS[t])
            os.close(ctx["join_fds"][t])


def _unshare(ctx: dict, skip) -> None:
    flags = 0
    for t in ctx["new_ns"]:
        if t not in skip:
            flags |= NS_FLAGS[t]
    if flags:
        libc.unshare(flags)


def single(ctx: dict) -> None:
    """Without a user namespace: the runtime already made (or joined) the pid namespace for
    its children, so this process is the container's init; no second fork needed."""
    chan = ctx["chan"].as_child()
    try:
        from smith.runtime import cgroups
        # v1: joined on "G" (_setup), once the runtime has made them; v2: the clone did,
        # unless clone3 could not.
        cgroups.enter(cgroups.split(ctx["cgroup_dirs"])[0], ctx["v2_placed"])
        for fd in ctx["close_fds"]:
            os.close(fd)
        _join(ctx, skip=("pid",))
        _unshare(ctx, skip=("pid", "cgroup"))  # cgroup: once the runtime has moved us
    except BaseException as e:
        _fail(chan, e)
    stage2(ctx, chan)


def stage1(ctx: dict) -> None:
    """With a user namespace: create it first (the runtime writes the id maps), then the
    others owned by it, then fork init into the new pid namespace."""
    chan = ctx["chan"].as_child()
    try:
        from smith.runtime import cgroups
        cgroups.enter(ctx["cgroup_dirs"], ctx["v2_placed"])
        for fd in ctx["close_fds"]:
            os.close(fd)
        _join(ctx)
        if "user" in ctx["new_ns"]:
            libc.unshare(libc.CLONE_NEWUSER)
            chan.send("U")
            chan.expect("M")
            if ctx["root_mapped"]:
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
        _unshare(ctx, skip=("user", "cgroup"))
        pid = os.fork()
        if pid == 0:
            stage2(ctx, chan)
        chan.send("P %d" % pid)
        os._exit(0)
    except BaseException as e:  # report everything to the runtime, never unwind into its code
        _fail(chan, e)


def stage2(ctx: dict, chan) -> None:
    try:
        _setup(ctx, chan)
    except BaseException as e:
        _fail(chan, e)
    os._exit(127)


def _placed(ctx: dict, chan) -> None:
    """Wait for "S <our pid>": the runtime has recorded us (our pid is for the hooks); we are
    in our cgroups already (see cgroups.enter), so a cgroup namespace can be made now."""
    if ctx["hook_state"]["pid"]:
        return
    go = chan.recv()
    if not go.startswith("S "):
        raise RuntimeError("runtime went away during setup")
    ctx["hook_state"]["pid"] = int(go[2:])
    if "cgroup" in ctx["new_ns"]:
        libc.unshare(libc.CLONE_NEWCGROUP)


def _setup(ctx: dict, chan) -> None:
    # Import now everything needed later: after pivot_root neither the standard library nor
    # our zipapp is reachable any more.
    from smith.runtime import identity, rootfs
    if os.getenv("SMITH_RUNTIME_DEBUG"):
        import traceback  # noqa: F401  (for _fail)
    cloexec_from(3)
    config = ctx["config"]
    process = config["process"]
    linux = config.get("linux") or {}
    hooks = config.get("hooks") or {}
    if process.get("terminal"):
        from smith.runtime import console
    if hooks.get("startContainer") or hooks.get("createContainer"):
        from smith.runtime import hooks as hookrun
        hookrun.preload()
    rootfs_dir = config["root"]["path"]
    userns = "user" in ctx["new_ns"] or "user" in ctx["join_fds"]
    os.setsid()
    if "network" in ctx["new_ns"]:
        _loopback_up()  # as runc does: a new network namespace gets `lo` up
    mounts = config.get("mounts") or []
    if ctx.get("cgroups_go"):
        chan.expect("G")  # the runtime has made our v1 cgroups: join them
        from smith.runtime import cgroups
        cgroups.enter(cgroups.split(ctx["cgroup_dirs"])[1], True)
    # A mount namespace, new or joined by path, gets the rootfs set up in it; without one the
    # mounts are made in the runtime's own namespace and the process chroots (both as runc).
    own_ns = "mount" in ctx["new_ns"] or "mount" in ctx["join_fds"]
    root_fd = rootfs.prepare_root(rootfs_dir, linux.get("rootfsPropagation"), own_ns)
    rootfs.mount_all(root_fd, ctx["bundle"], mounts, userns, ctx["cgroup_dirs"])
    if any(m["destination"] == "/dev" and not _is_bind(m) for m in mounts):  # runc: a fresh /dev
        rootfs.make_devices(root_fd, linux.get("devices") or [], userns)
        rootfs.dev_symlinks(root_fd)
    elif linux.get("devices"):
        rootfs.make_devices(root_fd, linux["devices"], userns)
    rootfs.make_cwd(root_fd, process["cwd"])
    if hooks.get("prestart") or hooks.get("createRuntime") or hooks.get("createContainer"):
        _placed(ctx, chan)  # hooks get our pid in their state
    if hooks.get("prestart") or hooks.get("createRuntime"):
        chan.send("H")
        chan.expect("C")
    if hooks.get("createContainer"):
        hookrun.run("createContainer", hooks["createContainer"], ctx["hook_state"])
    seccomp = ctx["seccomp"]  # built by the runtime before it forked us
    if seccomp is not None:
        from smith.runtime import seccomp as sc
    # sysctls, then readonly and masked paths (in runc's order: /proc/sys is written before it
    # is made read-only), all through descriptors while the host's /proc/self/fd is reachable.
    rootfs.write_sysctls(root_fd, linux.get("sysctl") or {})
    for p in linux.get("readonlyPaths") or ():
        rootfs.readonly_path(root_fd, p)
    if linux.get("maskedPaths"):
        null_fd = rootfs.dev_null(root_fd)
        for p in linux["maskedPaths"]:
            rootfs.mask_path(root_fd, p, null_fd)
        os.close(null_fd)
    if not own_ns:
        rootfs.chroot(root_fd)
    elif ctx["no_pivot"]:
        rootfs.move_root(root_fd)
    else:
        rootfs.pivot(root_fd)
        rootfs.root_propagation(linux.get("rootfsPropagation"))
    os.close(root_fd)
    if "hostname" in config:
        libc.sethostname(config["hostname"])
    if "domainname" in config:
        libc.setdomainname(config["domainname"])
    if config["root"].get("readonly"):
        rootfs.readonly_root()
    _placed(ctx, chan)
    if process.get("terminal"):
        console.setup_child(ctx["console_fd"], process)
    identity.set_rlimits(process.get("rlimits"))
    exe = identity.find_executable(process["args"][0], process.get("env"))
    env = _env(identity.with_home(process.get("env"), process["user"]["uid"]))
    nnp = process.get("noNewPrivileges")
    if seccomp is not None and not nnp:
        sc.load(seccomp)  # needs CAP_SYS_ADMIN, so before the caps are dropped
    identity.finalize(process)
    rootfs.enter_cwd(process["cwd"])
    chan.send("R")
    if ctx["state_fd"] >= 0:  # wait for `start` (run: start right away)
        fifo = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=ctx["state_fd"])
        os.write(fifo, b"0")
        os.close(ctx["state_fd"])
    if hooks.get("startContainer"):
        ctx["hook_state"]["status"] = "running"
        hookrun.run("startContainer", hooks["startContainer"], ctx["hook_state"])
    if seccomp is not None and nnp:
        sc.load(seccomp)
    os.execve(exe, process["args"], env)


def _loopback_up() -> None:
    """As runc does: `lo` up in a new network namespace, so 127.0.0.1 works in the container.
    Through libc (socket + two ioctls): `import socket` pulls in enum, selectors and
    collections (~6 ms at every container start), and even _socket, _struct and fcntl are
    shared libraries to load (~1M instructions)."""
    libc.loopback_up()


def _is_bind(m: dict) -> bool:
    opts = m.get("options") or ()
    return m.get("type") == "bind" or "bind" in opts or "rbind" in opts


def cloexec_from(first: int) -> None:
    """Mark every inherited fd >= first close-on-exec, so none leaks into the container (runc
    does the same); ours are close-on-exec already."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the directory fd of listdir itself


def _env(env) -> dict:
    out = {}
    for e in env or ():
        k, _, v = e.partition("=")
        out[k] = v
    return out
