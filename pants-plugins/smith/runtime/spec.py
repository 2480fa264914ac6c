"""Load a bundle's config.json and check it against the runtime-spec before touching anything.

Every problem is a SmithError naming the field (`linux.namespaces[2].type`) and what to do,
so a bad config fails before any state directory, cgroup or process exists.
"""

from smith.errors import SmithError
from smith.runtime import caps, fastjson
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)

NAMESPACES = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
MAX_CONFIG_SIZE = 4 << 20
PROPAGATION = {"shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate",
               "runbindable"}


class _Checker:
    def __init__(self, path: str):
        self.path = path

    def fail(self, field: str, what: str) -> None:
        raise SmithError("%s: field %s: %s; fix the bundle's config.json" % (self.path, field, what))

    def typed(self, value: object, field: str, types, name: str) -> object:
        if not isinstance(value, types) or (types is int and isinstance(value, bool)):
            self.fail(field, "must be %s, got %s" % (name, fastjson.dumps(value) if value is not ... else "nothing"))
        return value

    def obj(self, d: object, field: str) -> dict:
        return self.typed(d, field, dict, "an object")

    def lst(self, v: object, field: str) -> list:
        return self.typed(v, field, list, "an array")

    def string(self, v: object, field: str) -> str:
        return self.typed(v, field, str, "a string")

    def integer(self, v: object, field: str) -> int:
        return self.typed(v, field, int, "an integer")

    def strings(self, v: object, field: str) -> list:
        self.typed(v, field, list, "an array of strings")
        for i, s in enumerate(v):
            self.typed(s, "%s[%d]" % (field, i), str, "a string (%s must be an array of strings)" % field)
        return v

    def abspath(self, v: object, field: str) -> str:
        if not self.string(v, field).startswith("/"):
            self.fail(field, "must be an absolute path, got %r" % v)
        return v


def load(bundle: str) -> dict:
    """Read and validate <bundle>/config.json; returns the config with root.path made absolute."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_SIZE + 1)
    except OSError as e:
        raise SmithError("cannot read %s: %s; pass the bundle directory with --bundle"
                         % (path, e.strerror)) from None
    if len(raw) > MAX_CONFIG_SIZE:
        raise SmithError("%s: too large (more than %d MiB); a runtime-spec config is a few KiB"
                         % (path, MAX_CONFIG_SIZE >> 20))
    try:
        config = fastjson.loads(raw)
    except ValueError as e:
        raise SmithError("%s: not valid JSON: %s" % (path, e)) from None
    validate(config, path, bundle)
    return config


def validate(config: object, path: str, bundle: str) -> None:
    c = _Checker(path)
    c.obj(config, "(top level)")
    c.string(config.get("ociVersion", ...), "ociVersion")
    root = c.obj(config.get("root", ...), "root")
    rootfs = c.string(root.get("path", ...), "root.path")
    rootfs = os.path.join(bundle, rootfs)
    if not os.path.isdir(rootfs):
        c.fail("root.path", "the root filesystem %s does not exist or is not a directory" % rootfs)
    root["path"] = os.path.realpath(rootfs)
    if "readonly" in root:
        c.typed(root["readonly"], "root.readonly", bool, "a boolean")
    if "hostname" in config:
        c.string(config["hostname"], "hostname")
    if "domainname" in config:
        c.string(config["domainname"], "domainname")
    _process(c, config.get("process", ...))
    for i, m in enumerate(c.lst(config.get("mounts", []), "mounts")):
        f = "mounts[%d]" % i
        c.obj(m, f)
        c.abspath(m.get("destination", ...), f + ".destination")
        for k in ("type", "source"):
            if k in m:
                c.string(m[k], "%s.%s" % (f, k))
        c.strings(m.get("options", []), f + ".options")
    _hooks(c, config.get("hooks", {}))
    c.obj(config.get("annotations", {}), "annotations")
    _linux(c, c.obj(config.get("linux", {}), "linux"))


def _process(c: _Checker, p: object) -> None:
    c.obj(p, "process")
    args = c.strings(p.get("args", ...), "process.args")
    if not args:
        c.fail("process.args", "must name the program to run (it is empty)")
    c.abspath(p.get("cwd", ...), "process.cwd")
    for i, e in enumerate(c.strings(p.get("env", []), "process.env")):
        if "=" not in e:
            c.fail("process.env[%d]" % i, "must look like NAME=VALUE, got %r" % e)
    for k in ("terminal", "noNewPrivileges"):
        if k in p:
            c.typed(p[k], "process." + k, bool, "a boolean")
    user = c.obj(p.get("user", ...), "process.user")
    for k in ("uid", "gid"):
        if not 0 <= c.integer(user.get(k, ...), "process.user." + k) < 1 << 32:
            c.fail("process.user." + k, "must be between 0 and 2^32-1")
    if "umask" in user:
        c.integer(user["umask"], "process.user.umask")
    for i, g in enumerate(c.lst(user.get("additionalGids", []), "process.user.additionalGids")):
        if not 0 <= c.integer(g, "process.user.additionalGids[%d]" % i) < 1 << 32:
            c.fail("process.user.additionalGids[%d]" % i, "must be between 0 and 2^32-1")
    capset = c.obj(p.get("capabilities", {}), "process.capabilities")
    for k, names in capset.items():
        if k not in caps.SETS:
            c.fail("process.capabilities." + k, "unknown capability set (known: %s)" % ", ".join(caps.SETS))
        for i, n in enumerate(c.strings(names, "process.capabilities." + k)):
            if n not in caps.NUMBER:
                c.fail("process.capabilities.%s[%d]" % (k, i), "unknown capability %r" % n)
    for i, r in enumerate(c.lst(p.get("rlimits", []), "process.rlimits")):
        f = "process.rlimits[%d]" % i
        c.obj(r, f)
        if c.string(r.get("type", ...), f + ".type") not in RLIMITS:
            c.fail(f + ".type", "unknown rlimit %r (known: %s)" % (r["type"], ", ".join(sorted(RLIMITS))))
        soft, hard = c.integer(r.get("soft", ...), f + ".soft"), c.integer(r.get("hard", ...), f + ".hard")
        for k, v in (("soft", soft), ("hard", hard)):
            if not 0 <= v < 1 << 64:
                c.fail("%s.%s" % (f, k), "must be between 0 and 2^64-1")
        if soft > hard:
            c.fail(f, "soft limit %d is above hard limit %d" % (soft, hard))
    if "oomScoreAdj" in p:
        if not -1000 <= c.integer(p["oomScoreAdj"], "process.oomScoreAdj") <= 1000:
            c.fail("process.oomScoreAdj", "must be between -1000 and 1000")
    if "consoleSize" in p:
        c.obj(p["consoleSize"], "process.consoleSize")
    for k, what in (("apparmorProfile", "AppArmor profiles"), ("selinuxLabel", "SELinux labels")):
        if p.get(k):  # runc refuses them where the LSM is off; never run unconfined silently
            c.fail("process." + k, "%s are not supported by this runtime; remove the field or use "
                   "runc on a host with that LSM enabled" % what)


def _hooks(c: _Checker, hooks: object) -> None:
    c.obj(hooks, "hooks")
    for name, lst in hooks.items():
        if name not in HOOKS:
            c.fail("hooks." + name, "unknown hook kind (known: %s)" % ", ".join(HOOKS))
        for i, h in enumerate(c.lst(lst, "hooks." + name)):
            f = "hooks.%s[%d]" % (name, i)
            c.obj(h, f)
            c.abspath(h.get("path", ...), f + ".path")
            c.strings(h.get("args", []), f + ".args")
            for j, e in enumerate(c.strings(h.get("env", []), f + ".env")):
                if "=" not in e:
                    c.fail("%s.env[%d]" % (f, j), "must look like NAME=VALUE, got %r" % e)
            if "timeout" in h and not 0 < c.integer(h["timeout"], f + ".timeout") < 1 << 31:
                c.fail(f + ".timeout", "must be a positive number of seconds (below 2^31)")


def _linux(c: _Checker, linux: dict) -> None:
    seen = set()
    for i, ns in enumerate(c.lst(linux.get("namespaces", []), "linux.namespaces")):
        f = "linux.namespaces[%d]" % i
        c.obj(ns, f)
        t = c.string(ns.get("type", ...), f + ".type")
        if t not in NAMESPACES:
            c.fail(f + ".type", "unknown namespace %r (known: %s)" % (t, ", ".join(sorted(NAMESPACES))))
        if t in seen:
            c.fail(f + ".type", "namespace %r is listed twice" % t)
        seen.add(t)
        if "path" in ns and not os.path.exists(c.abspath(ns["path"], f + ".path")):
            c.fail(f + ".path", "namespace file %s does not exist" % ns["path"])
    for k in ("uidMappings", "gidMappings"):
        maps = c.lst(linux.get(k, []), "linux." + k)
        for i, m in enumerate(maps):
            f = "linux.%s[%d]" % (k, i)
            c.obj(m, f)
            for n in ("containerID", "hostID", "size"):
                if c.integer(m.get(n, ...), "%s.%s" % (f, n)) < 0:
                    c.fail("%s.%s" % (f, n), "must not be negative")
            if m["size"] == 0:
                c.fail(f + ".size", "must be at least 1")
        user = "user" in seen
        if maps and not user:
            c.fail("linux." + k, "mappings need a user namespace (add {\"type\": \"user\"} to linux.namespaces)")
        if user and not maps and not any(n.get("path") for n in linux["namespaces"] if n["type"] == "user"):
            c.fail("linux." + k, "a new user namespace needs at least one mapping")
    for i, d in enumerate(c.lst(linux.get("devices", []), "linux.devices")):
        f = "linux.devices[%d]" % i
        c.obj(d, f)
        c.abspath(d.get("path", ...), f + ".path")
        if c.string(d.get("type", ...), f + ".type") not in ("c", "b", "u", "p"):
            c.fail(f + ".type", "must be one of c, b, u, p")
        if d["type"] != "p":
            for k in ("major", "minor"):
                if not 0 <= c.integer(d.get(k, ...), "%s.%s" % (f, k)) < 1 << 32:
                    c.fail("%s.%s" % (f, k), "must be between 0 and 2^32-1")
        for k in ("fileMode", "uid", "gid"):
            if k in d and d[k] is None:
                del d[k]  # null is absent, as for runc's Go pointers
        if d.get("fileMode") is not None and not 0 <= c.integer(d["fileMode"], f + ".fileMode") <= 0o7777:
            c.fail(f + ".fileMode", "must be a permission mode between 0 and 0o7777")
        for k in ("uid", "gid"):
            if d.get(k) is not None and not 0 <= c.integer(d[k], "%s.%s" % (f, k)) < 1 << 32:
                c.fail("%s.%s" % (f, k), "must be between 0 and 2^32-1")
    for k in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(c.strings(linux.get(k, []), "linux." + k)):
            c.abspath(p, "linux.%s[%d]" % (k, i))
    if "rootfsPropagation" in linux and linux["rootfsPropagation"] not in PROPAGATION:
        c.fail("linux.rootfsPropagation", "must be one of %s" % ", ".join(sorted(PROPAGATION)))
    if "cgroupsPath" in linux:
        c.string(linux["cgroupsPath"], "linux.cgroupsPath")
    for k, v in c.obj(linux.get("sysctl", {}), "linux.sysctl").items():
        c.string(v, "linux.sysctl." + k)
    _resources(c, c.obj(linux.get("resources", {}), "linux.resources"))
    if linux.get("mountLabel"):
        c.fail("linux.mountLabel", "SELinux mount labels are not supported by this runtime")
    if linux.get("intelRdt"):  # runc: "... is specified in config, but Intel RDT/CAT is not enabled"
        c.fail("linux.intelRdt", "Intel RDT (resctrl) is not supported by this runtime")
    if "seccomp" in linux:
        s = c.obj(linux["seccomp"], "linux.seccomp")
        if not s.get("defaultAction") and not s.get("syscalls"):
            del linux["seccomp"]  # like runc: no default action and no rules is no seccomp
        else:
            _seccomp(c, s)


def _ints(c: _Checker, d: dict, field: str, keys, minimum=None) -> None:
    for k in keys:
        if d.get(k) is not None:
            if c.integer(d[k], "%s.%s" % (field, k)) < (minimum if minimum is not None else -(1 << 63)):
                c.fail("%s.%s" % (field, k), "must be at least %d" % minimum)


def _devices_list(c: _Checker, r: dict, key: str, fields) -> None:
    f = "linux.resources.blockIO." + key
    for i, d in enumerate(c.lst(r.get(key) or [], f)):
        c.obj(d, "%s[%d]" % (f, i))
        for k in ("major", "minor"):
            c.integer(d.get(k, ...), "%s[%d].%s" % (f, i, k))
        _ints(c, d, "%s[%d]" % (f, i), fields, 0)


def _resources(c: _Checker, r: dict) -> None:
    """Types of linux.resources (what runc's Go types would refuse to parse, refused here with
    the field named); whether the host can apply them is cgroups.apply's question."""
    mem = c.obj(r.get("memory") or {}, "linux.resources.memory")
    _ints(c, mem, "linux.resources.memory", ("limit", "reservation", "swap", "kernel", "kernelTCP"))
    if mem.get("swappiness") is not None:
        if not 0 <= c.integer(mem["swappiness"], "linux.resources.memory.swappiness") <= 100:
            c.fail("linux.resources.memory.swappiness", "must be between 0 and 100 (runc: \"valid range is 0-100\"), got %d"
                   % mem["swappiness"])
    for k in ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"):
        if mem.get(k) is not None:
            c.typed(mem[k], "linux.resources.memory." + k, bool, "a boolean")
    cpu = c.obj(r.get("cpu") or {}, "linux.resources.cpu")
    _ints(c, cpu, "linux.resources.cpu", ("shares", "period", "realtimePeriod"), 0)
    _ints(c, cpu, "linux.resources.cpu", ("quota", "realtimeRuntime"))
    for k in ("cpus", "mems"):
        if cpu.get(k) is not None:
            c.string(cpu[k], "linux.resources.cpu." + k)
    _ints(c, c.obj(r.get("pids") or {}, "linux.resources.pids"), "linux.resources.pids", ("limit",))
    bio = c.obj(r.get("blockIO") or {}, "linux.resources.blockIO")
    _ints(c, bio, "linux.resources.blockIO", ("weight", "leafWeight"), 0)
    _devices_list(c, bio, "weightDevice", ("weight", "leafWeight"))
    for k in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
        _devices_list(c, bio, k, ("rate",))
    for i, h in enumerate(c.lst(r.get("hugepageLimits") or [], "linux.resources.hugepageLimits")):
        f = "linux.resources.hugepageLimits[%d]" % i
        c.obj(h, f)
        c.string(h.get("pageSize", ...), f + ".pageSize")
        _ints(c, h, f, ("limit",), 0)
    net = c.obj(r.get("network") or {}, "linux.resources.network")
    if net.get("classID") is not None and not 0 <= c.integer(net["classID"], "linux.resources.network.classID") < 1 << 32:
        c.fail("linux.resources.network.classID", "must be an unsigned 32-bit integer")
    for i, p in enumerate(c.lst(net.get("priorities") or [], "linux.resources.network.priorities")):
        f = "linux.resources.network.priorities[%d]" % i
        c.obj(p, f)
        name = c.string(p.get("name", ...), f + ".name")
        if not name or any(ch in name for ch in " \t\n/"):
            c.fail(f + ".name", "must be a network interface name, got %r" % name)
        _ints(c, p, f, ("priority",), 0)
    for i, d in enumerate(c.lst(r.get("devices") or [], "linux.resources.devices")):
        f = "linux.resources.devices[%d]" % i
        c.obj(d, f)
        c.typed(d.get("allow", ...), f + ".allow", bool, "a boolean")
        for k in ("type", "access"):
            if d.get(k) is not None:
                c.string(d[k], "%s.%s" % (f, k))
        _ints(c, d, f, ("major", "minor"))
    for k, v in c.obj(r.get("unified") or {}, "linux.resources.unified").items():
        c.string(v, "linux.resources.unified." + k)


def _seccomp(c: _Checker, s: dict) -> None:
    """Types and names of linux.seccomp; what runc refuses is refused here, naming the field."""
    from smith.runtime import seccomp
    actions = ", ".join(sorted(seccomp.ACTIONS))

    def errno_ret(v, f):
        if (c.integer(v, f) & 0xFFFF) > seccomp.MAX_ERRNO or v < 0:
            c.fail(f, "%d is not an errno number (0 to %d)" % (v, seccomp.MAX_ERRNO))

    default = c.string(s.get("defaultAction", ...), "linux.seccomp.defaultAction")
    if default not in seccomp.ACTIONS:
        c.fail("linux.seccomp.defaultAction", "unknown seccomp action %r (known: %s)" % (default, actions))
    if default == "SCMP_ACT_NOTIFY":  # runc: "SCMP_ACT_NOTIFY cannot be used as default action"
        c.fail("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    if "defaultErrnoRet" in s:
        errno_ret(s["defaultErrnoRet"], "linux.seccomp.defaultErrnoRet")
    for i, arch in enumerate(c.strings(s.get("architectures", []), "linux.seccomp.architectures")):
        if arch not in seccomp.ARCHES:
            c.fail("linux.seccomp.architectures[%d]" % i, "unknown architecture %r (known: %s)"
                   % (arch, ", ".join(sorted(seccomp.ARCHES))))
    for i, flag in enumerate(c.strings(s.get("flags", []), "linux.seccomp.flags")):
        f = "linux.seccomp.flags[%d]" % i
        if flag in seccomp.UNSUPPORTED_FLAGS:
            c.fail(f, "%s is not supported: %s" % (flag, seccomp.UNSUPPORTED_FLAGS[flag]))
        if flag not in seccomp.FLAGS:
            c.fail(f, "unknown seccomp flag %r (supported: %s)" % (flag, ", ".join(sorted(seccomp.FLAGS))))
    for k in ("listenerPath", "listenerMetadata"):
        if k in s:
            c.string(s[k], "linux.seccomp." + k)
    for i, rule in enumerate(c.lst(s.get("syscalls", []), "linux.seccomp.syscalls")):
        f = "linux.seccomp.syscalls[%d]" % i
        c.obj(rule, f)
        for j, name in enumerate(c.strings(rule.get("names", ...), f + ".names")):
            if not name:  # runc: "empty string is not a valid syscall"
                c.fail("%s.names[%d]" % (f, j), "an empty string is not a syscall name")
        act = c.string(rule.get("action", ...), f + ".action")
        if act not in seccomp.ACTIONS:
            c.fail(f + ".action", "unknown seccomp action %r (known: %s)" % (act, actions))
        if act == "SCMP_ACT_NOTIFY":
            c.fail(f + ".action", "SCMP_ACT_NOTIFY (handing syscalls to a seccomp agent at "
                   "linux.seccomp.listenerPath) is not supported by this runtime")
        if "errnoRet" in rule:
            errno_ret(rule["errnoRet"], f + ".errnoRet")
        for j, a in enumerate(c.lst(rule.get("args", []), f + ".args")):
            fa = "%s.args[%d]" % (f, j)
            c.obj(a, fa)
            if not 0 <= c.integer(a.get("index", ...), fa + ".index") <= 5:
                c.fail(fa + ".index", "syscalls have 6 arguments (index 0 to 5), got %d" % a["index"])
            if c.string(a.get("op", ...), fa + ".op") not in seccomp.OPS:
                c.fail(fa + ".op", "unknown operator %r (known: %s)" % (a["op"], ", ".join(sorted(seccomp.OPS))))
            for k in ("value", "valueTwo"):
                if k in a and not 0 <= c.integer(a[k], "%s.%s" % (fa, k)) < 1 << 64:
                    c.fail("%s.%s" % (fa, k), "must be an unsigned 64-bit integer")
