"""The process' identity just before exec: rlimits, groups, uid/gid, the five capability sets,
no_new_privs and umask (runc's finalizeNamespace + setupUser + capabilities)."""

from smith.errors import SmithError
from smith.runtime import caps, libc
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)
from smith.runtime.spec import RLIMITS


def set_rlimits(rlimits) -> None:
    if not rlimits:
        return
    for r in rlimits:
        try:
            libc.setrlimit(RLIMITS[r["type"]], r["soft"], r["hard"])
        except OSError as e:
            cur = libc.getrlimit(RLIMITS[r["type"]])
            raise SmithError("process.rlimits %s: cannot set soft=%d hard=%d (current hard limit %d; "
                             "raising it needs CAP_SYS_RESOURCE): %s; lower the limit in config.json"
                             % (r["type"], r["soft"], r["hard"], cur[1], e.strerror)) from None


def drop_bounding(keep: int) -> None:
    for n in range(caps.last_cap() + 1):
        if not keep & (1 << n):
            libc.prctl(libc.PR_CAPBSET_DROP, n)


def set_user(user: dict) -> None:
    uid, gid = user["uid"], user["gid"]
    libc.prctl(libc.PR_SET_KEEPCAPS, 1)  # keep permitted caps across setuid from 0
    try:
        os.setgroups(list(user.get("additionalGids") or []))
    except PermissionError:
        if user.get("additionalGids"):
            raise
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    libc.prctl(libc.PR_SET_KEEPCAPS, 0)


def set_caps(capabilities: dict) -> None:
    c = capabilities or {}
    libc.capset(caps.mask(c.get("effective")), caps.mask(c.get("permitted")),
                caps.mask(c.get("inheritable")))
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    for name in c.get("ambient") or ():
        try:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, caps.NUMBER[name])
        except PermissionError:
            pass  # like runc: an ambient cap not in permitted+inheritable is silently skipped


def finalize(process: dict) -> None:
    """Everything that needs privileges first, then become the user with the configured caps."""
    c = process.get("capabilities")
    if c is not None:
        drop_bounding(caps.mask(c.get("bounding")))
    set_user(process["user"])
    if c is not None:
        set_caps(c)
    if process.get("noNewPrivileges"):
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    os.umask(process["user"].get("umask", 0o022))


def find_executable(args0: str, env) -> str:
    """Resolve args[0] with the container's PATH (after pivot_root), as runc does before start."""
    if "/" in args0:
        candidates = [args0]
    else:
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for e in env or ():
            if e.startswith("PATH="):
                path = e[5:]
        candidates = [os.path.join(d or ".", args0) for d in path.split(":")]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise SmithError('process.args[0]: executable %r not found in the container (PATH searched: %s); '
                     'fix process.args or process.env PATH' % (args0, ", ".join(candidates)))


def with_home(env, uid: int) -> list:
    """Like runc: if the process env has no HOME, use the user's home from the container's
    /etc/passwd, or "/"."""
    env = list(env or [])
    if any(e.startswith("HOME=") for e in env):
        return env
    home = "/"
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    home = fields[5] or "/"
                    break
    except OSError:
        pass
    return env + ["HOME=" + home]
