"""Run a command in all of a process's namespaces and cgroups, as its root user.

Three processes: crashcart (stays on the host; forwards signals; returns the exit code), a
relay (joins the cgroups from the host's /sys, then the namespaces, user first; waits) and
the command (forked by the relay so it is really inside the pid namespace, which setns only
grants to children). The relay tells crashcart the command's host pid through a pipe, so
signals go straight to the command.
"""
import os
import signal
import sys
import traceback
from typing import Dict, List, Optional, Tuple

from smith import linux
from smith.errors import SmithError, for_terminal

# The user namespace first: once in it we hold the capabilities the others' owners require.
NAMESPACES = (("user", linux.CLONE_NEWUSER), ("mnt", linux.CLONE_NEWNS),
              ("pid", linux.CLONE_NEWPID), ("net", linux.CLONE_NEWNET),
              ("ipc", linux.CLONE_NEWIPC), ("uts", linux.CLONE_NEWUTS),
              ("cgroup", linux.CLONE_NEWCGROUP))
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
             signal.SIGINT, signal.SIGQUIT)
TTY_SIGNALS = (signal.SIGINT, signal.SIGQUIT)  # a terminal sends these to the command itself


def _same(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def open_namespaces(pid: int, what: str) -> List[Tuple[str, int, int]]:
    """(name, fd, flag) for each namespace of pid that differs from ours, in joining order."""
    found = []
    try:
        for name, flag in NAMESPACES:
            theirs = "/proc/%d/ns/%s" % (pid, name)
            if not _same(theirs, "/proc/self/ns/" + name):
                found.append((name, os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), flag))
    except FileNotFoundError:
        raise SmithError("%s has exited" % what)
    return found


def _cgroup_mounts() -> List[Tuple[str, str, set]]:
    """(mount point, mount root, super options or {"cgroup2"}) of the host's cgroup mounts."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            fields, rfields = left.split(" "), right.split(" ")
            if rfields[0] == "cgroup2":
                mounts.append((fields[4], fields[3], {"cgroup2"}))
            elif rfields[0] == "cgroup":
                mounts.append((fields[4], fields[3], set(rfields[2].split(","))))
    return mounts


def cgroup_procs_files(pid: int) -> List[str]:
    """The host's cgroup.procs file of each hierarchy pid belongs to."""
    files = []
    mounts = _cgroup_mounts()
    with open("/proc/%d/cgroup" % pid) as f:
        lines = f.read().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        want = {"cgroup2"} if controllers == "" else set(controllers.split(","))
        for point, root, opts in mounts:
            if want <= opts and (path + "/").startswith(root.rstrip("/") + "/"):
                rel = path[len(root.rstrip("/")):].lstrip("/")
                files.append(os.path.join(point, rel, "cgroup.procs"))
                break
    return files


def _join_cgroups(files: List[str]) -> None:
    for path in files:
        try:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
        except OSError as e:
            # the path names cgroups the container's processes may have created and named
            print(for_terminal("crashcart: warning: cannot join cgroup %s: %s"
                               % (os.path.dirname(path), e.strerror)), file=sys.stderr)


def _become_root(in_user_ns: bool) -> None:
    """uid/gid 0 of the container: after joining its user namespace that is its mapped root."""
    try:
        os.setgroups([])
    except PermissionError:
        if not in_user_ns:
            raise  # in a user ns, /proc/PID/setgroups may be "deny"; that is fine
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _relay(cgroup_files, namespaces, root: int, argv: List[str], env: Dict[str, str],
           report: int) -> None:
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_IGN)  # crashcart forwards them to the command itself
    _join_cgroups(cgroup_files)
    for name, fd, flag in namespaces:
        try:
            linux.setns(fd, flag)
        except OSError as e:
            raise SmithError("cannot join the %s namespace: %s" % (name, e.strerror))
        os.close(fd)
    # The target's own root, which may lie below its namespace's root (runc --no-pivot).
    os.fchdir(root)
    os.chroot(".")
    in_user_ns = any(name == "user" for name, _, _ in namespaces)
    try:
        _become_root(in_user_ns)
    except OSError as e:
        raise SmithError("cannot become uid/gid 0 in the container (is root mapped in its user "
                         "namespace?): %s" % e.strerror)
    child = os.fork()
    if child == 0:
        try:
            for sig in signal.valid_signals():
                if sig not in (signal.SIGKILL, signal.SIGSTOP):
                    try:
                        # Python ignores SIGPIPE, and exec would keep that.
                        signal.signal(sig, signal.SIG_DFL)
                    except (OSError, ValueError):
                        pass
            os.chdir("/")
            os.execvpe(argv[0], argv, env)
        except OSError as e:
            os.write(report, ("error:cannot run %s: %s\n" % (argv[0], e.strerror)).encode())
            os._exit(127 if e.errno == 2 else 126)
        os._exit(127)
    os.write(report, b"pid:%d\n" % child)
    os.close(report)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(1)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def run(pid: int, what: str, argv: List[str], env: Dict[str, str]) -> int:
    """Run argv inside pid's namespaces and cgroups; its exit code (128+N if killed by N)."""
    cgroup_files = cgroup_procs_files(pid)
    namespaces = open_namespaces(pid, what)
    try:
        root = os.open("/proc/%d/root" % pid, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise SmithError("%s has exited" % what)
    r, w = os.pipe()
    relay = os.fork()
    if relay == 0:
        try:
            os.close(r)
            _relay(cgroup_files, namespaces, root, argv, env, w)
        except SmithError as e:
            os.write(w, ("fatal:%s in %s\n" % (e, what)).encode())
        except BaseException:
            os.write(w, ("fatal:crashcart bug: %s\n" % traceback.format_exc()).encode())
        os._exit(125)
    os.close(w)
    os.close(root)
    for _, fd, _ in namespaces:
        os.close(fd)
    command: List[Optional[int]] = [None]  # a pidfd of the command, once known
    pending: List[int] = []

    def forward(sig, frame):
        if command[0] is None:
            pending.append(sig)
            return
        try:
            signal.pidfd_send_signal(command[0], sig)
        except ProcessLookupError:
            pass

    tty = os.isatty(0)
    old = {}
    for sig in FORWARDED:
        old[sig] = signal.signal(sig, signal.SIG_IGN if tty and sig in TTY_SIGNALS else forward)
    try:
        with os.fdopen(r, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        errors = []
        for line in lines:
            kind, _, value = line.partition(":")
            if kind == "pid":
                # A pidfd: a signal can never reach another process that reused the pid.
                try:
                    command[0] = os.pidfd_open(int(value))
                except ProcessLookupError:
                    continue  # already gone
                for sig in pending:
                    forward(sig, None)
            else:
                errors.append((kind, value))
        _, status = os.waitpid(relay, 0)
        code = os.waitstatus_to_exitcode(status)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if command[0] is not None:
            os.close(command[0])
    for kind, value in errors:
        if kind == "fatal":
            raise SmithError(value)
        print("crashcart: %s" % for_terminal(value), file=sys.stderr)
    return 128 - code if code < 0 else code
