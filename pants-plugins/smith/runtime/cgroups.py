"""cgroup v1 hierarchies and the v2 unified tree (this host is hybrid): create, limit, join, remove.

`linux.cgroupsPath` is used as runc's cgroupfs driver uses it: absolute paths are relative to
each hierarchy's root, relative ones to the runtime's own cgroup; the default is <id>.
The resulting directories are recorded in state.json so `delete` removes exactly those.
"""
import time

from smith.errors import SmithError
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)

# runc always appends these to linux.resources.devices: the default device nodes, ptys and tun.
ALLOWED_DEVICES = [
    {"allow": True, "type": "c", "major": -1, "minor": -1, "access": "m"},
    {"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


_V1_MOUNT_FLAGS = {"rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children",
                   "xattr", "noprefix", "cpuset_v2_mode"}


def hierarchies() -> dict:
    """Map hierarchy name ("memory", "cpu,cpuacct", "name=systemd", "" for v2) to its mount point."""
    found = {}
    for line in os.read_text("/proc/self/mountinfo").splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, opts = fields[sep + 1], fields[sep + 3]
        if fstype == "cgroup":
            # super options: the controllers (or name=...) among mount flags
            names = [o for o in opts.split(",") if o.startswith("name=") or
                     ("=" not in o and o not in _V1_MOUNT_FLAGS)]
            found.setdefault(",".join(sorted(names)), fields[4])
        elif fstype == "cgroup2":
            found.setdefault("", fields[4])
    return found


def own_paths() -> dict:
    paths = {}
    for line in os.read_text("/proc/self/cgroup").splitlines():
        _, names, path = line.split(":", 2)
        paths[",".join(sorted(names.split(",")))] = path
    return paths


def plan(cid: str, cgroups_path: str) -> dict:
    """Directory of this container in every hierarchy: {hierarchy name: absolute dir}."""
    spec_path = cgroups_path or cid  # like runc: <id> under the runtime's own cgroup
    if ":" in spec_path and not spec_path.startswith("/"):
        raise SmithError("linux.cgroupsPath %r looks like a systemd slice:scope path; this runtime "
                         "only has the cgroupfs driver: use a path like /machine/%s" % (spec_path, cid))
    mine = own_paths() if not spec_path.startswith("/") else {}
    dirs = {}
    for name, mnt in hierarchies().items():
        base = mine.get(name, "/") if mine else "/"
        rel = os.path.normpath(os.path.join(base, spec_path)).lstrip("/")
        dirs[name] = os.path.join(mnt, rel)
    return dirs


def _write(path: str, value: str, field: str = "linux.resources") -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise SmithError("%s: cannot write %r to %s: %s; check it in config.json"
                         % (field, value, path, e.strerror)) from None
    finally:
        os.close(fd)


def _unavailable(field: str, controller: str) -> SmithError:
    """runc refuses these too ("cannot set net_cls limit: container could not join or create
    cgroup"): a limit that cannot be applied is not silently dropped."""
    return SmithError("%s: this host has no %s cgroup controller to apply it; remove the field "
                      "from config.json or run on a host that mounts %s" % (field, controller, controller))


def _read(path: str) -> str:
    return os.read_text(path).strip()


def create(dirs: dict, made: list) -> list:
    """mkdir -p each directory, appending each one created to `made` as it goes (so a failure
    half-way still lets the caller remove them all); returns `made`."""
    for name, d in dirs.items():
        todo = []
        p = d
        while not os.path.isdir(p):
            todo.append(p)
            p = os.path.dirname(p)
        for p in reversed(todo):
            os.mkdir(p)
            made.append(p)
            if "cpuset" in name.split(","):
                # v1 cpuset children start empty and refuse tasks until cpus/mems are set.
                parent = os.path.dirname(p)
                for f in ("cpuset.cpus", "cpuset.mems"):
                    _write(os.path.join(p, f), _read(os.path.join(parent, f)))
    return made


def apply(dirs: dict, resources: dict) -> None:
    if not resources:
        return
    v1 = {}
    for name, d in dirs.items():
        for ctl in name.split(","):
            v1[ctl] = d
    unified = dirs.get("")
    mem = resources.get("memory") or {}
    if "memory" in v1:
        d = v1["memory"]
        if mem.get("limit") is not None:
            _write(d + "/memory.limit_in_bytes", str(mem["limit"]))
        if mem.get("reservation") is not None:
            _write(d + "/memory.soft_limit_in_bytes", str(mem["reservation"]))
        if mem.get("swap") is not None and os.path.exists(d + "/memory.memsw.limit_in_bytes"):
            _write(d + "/memory.memsw.limit_in_bytes", str(mem["swap"]))
        if mem.get("swappiness") is not None:
            _write(d + "/memory.swappiness", str(mem["swappiness"]), "linux.resources.memory.swappiness")
        if mem.get("disableOOMKiller"):
            _write(d + "/memory.oom_control", "1", "linux.resources.memory.disableOOMKiller")
    elif mem.get("limit") is not None and unified and os.path.exists(unified + "/memory.max"):
        _write(unified + "/memory.max", str(mem["limit"]) if mem["limit"] > 0 else "max")
    pids = resources.get("pids") or {}
    if pids.get("limit") is not None:
        value = str(pids["limit"]) if pids["limit"] > 0 else "max"
        if "pids" in v1:
            _write(v1["pids"] + "/pids.max", value)
        elif unified and os.path.exists(unified + "/pids.max"):
            _write(unified + "/pids.max", value)
    cpu = resources.get("cpu") or {}
    if "cpu" in v1:
        d = v1["cpu"]
        if cpu.get("shares"):
            _write(d + "/cpu.shares", str(cpu["shares"]))
        if cpu.get("period"):
            _write(d + "/cpu.cfs_period_us", str(cpu["period"]))
        if cpu.get("quota"):
            _write(d + "/cpu.cfs_quota_us", str(cpu["quota"]))
        for key, f in (("realtimePeriod", "cpu.rt_period_us"), ("realtimeRuntime", "cpu.rt_runtime_us")):
            if cpu.get(key):  # runc's order: the period first
                if not os.path.exists(d + "/" + f):
                    raise SmithError("linux.resources.cpu.%s: this kernel has no %s (no real-time group "
                                     "scheduling); remove the field from config.json" % (key, f))
                _write(d + "/" + f, str(cpu[key]), "linux.resources.cpu." + key)
    elif unified and (cpu.get("quota") or cpu.get("period")) and os.path.exists(unified + "/cpu.max"):
        _write(unified + "/cpu.max", "%s %d" % (cpu.get("quota") or "max", cpu.get("period") or 100000))
    for key, f in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            if "cpuset" in v1:
                _write(v1["cpuset"] + "/" + f, cpu[key])
            elif unified and os.path.exists(unified + "/" + f):
                _write(unified + "/" + f, cpu[key])
    if "devices" in v1 and resources.get("devices") is not None:
        d = v1["devices"]
        for rule in resources["devices"] + ALLOWED_DEVICES:
            kind = rule.get("type") or "a"
            entry = "a" if kind == "a" and rule.get("major") in (None, -1) and rule.get("minor") in (None, -1) \
                else "%s %s:%s %s" % (kind, _num(rule.get("major")), _num(rule.get("minor")), rule.get("access") or "rwm")
            _write(d + ("/devices.allow" if rule.get("allow") else "/devices.deny"), entry)
    _network(v1, resources.get("network") or {})
    _block_io(v1, resources.get("blockIO") or {})
    _hugetlb(v1, resources.get("hugepageLimits") or ())
    for dev, lim in (resources.get("rdma") or {}).items():
        if "rdma" not in v1:
            raise _unavailable("linux.resources.rdma." + dev, "rdma")
        parts = ["%s=%d" % (k, lim[key]) for key, k in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object"))
                 if isinstance(lim, dict) and isinstance(lim.get(key), int)]
        _write(v1["rdma"] + "/rdma.max", "%s %s" % (dev, " ".join(parts)), "linux.resources.rdma." + dev)
    if resources.get("unified"):
        if len(dirs) > 1 or not unified:  # runc: "cannot use unified on cgroup v1"
            raise SmithError("linux.resources.unified: this host uses cgroup v1 controllers; unified "
                             "(cgroup v2 files) needs a host with the v2 hierarchy only, as in runc")
        for k, v in resources["unified"].items():
            if "/" in k or k.startswith(".") or not os.path.exists(os.path.join(unified, k)):
                raise SmithError("linux.resources.unified.%s: no such cgroup v2 file in %s" % (k, unified))
            _write(os.path.join(unified, k), v, "linux.resources.unified." + k)


def _network(v1: dict, net: dict) -> None:
    if net.get("classID") is not None:
        if "net_cls" not in v1:
            raise _unavailable("linux.resources.network.classID", "net_cls")
        _write(v1["net_cls"] + "/net_cls.classid", str(net["classID"]), "linux.resources.network.classID")
    for i, p in enumerate(net.get("priorities") or ()):
        field = "linux.resources.network.priorities[%d]" % i
        if "net_prio" not in v1:
            raise _unavailable(field, "net_prio")
        _write(v1["net_prio"] + "/net_prio.ifpriomap", "%s %d" % (p["name"], p["priority"]), field)


def _block_io(v1: dict, bio: dict) -> None:
    """blkio as runc writes it: CFQ's blkio.weight where the kernel has it, else BFQ's
    blkio.bfq.weight; a weight no file can take is refused, naming the field."""
    if not bio:
        return
    if "blkio" not in v1:
        raise _unavailable("linux.resources.blockIO", "blkio")
    d = v1["blkio"]
    prefix = "/blkio." if os.path.exists(d + "/blkio.weight") else "/blkio.bfq."

    def put(name: str, value: str, field: str) -> None:
        if not os.path.exists(d + "/" + name):
            raise SmithError("%s: the blkio controller of this host has no %s file (no I/O scheduler "
                             "that supports it); remove the field from config.json" % (field, name))
        _write(d + "/" + name, value, field)
    if bio.get("weight"):
        put(prefix[1:] + "weight", str(bio["weight"]), "linux.resources.blockIO.weight")
    if bio.get("leafWeight"):
        put("blkio.leaf_weight", str(bio["leafWeight"]), "linux.resources.blockIO.leafWeight")
    for i, w in enumerate(bio.get("weightDevice") or ()):
        field = "linux.resources.blockIO.weightDevice[%d]" % i
        if w.get("weight"):
            put(prefix[1:] + "weight_device", "%d:%d %d" % (w["major"], w["minor"], w["weight"]), field)
        if w.get("leafWeight"):
            put("blkio.leaf_weight_device", "%d:%d %d" % (w["major"], w["minor"], w["leafWeight"]), field)
    for key, name in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                      ("throttleReadIOPSDevice", "read_iops_device"), ("throttleWriteIOPSDevice", "write_iops_device")):
        for i, t in enumerate(bio.get(key) or ()):
            put("blkio.throttle." + name, "%d:%d %d" % (t["major"], t["minor"], t["rate"]),
                "linux.resources.blockIO.%s[%d]" % (key, i))


def host_page_sizes() -> dict:
    """{"2MB": "2048kB", ...}: the huge page sizes this kernel has, named as the runtime-spec
    (and the hugetlb controller's files) name them."""
    sizes = {}
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return sizes
    for n in names:  # hugepages-2048kB
        kb = int(n[len("hugepages-"):-2])
        unit, value = next((u, kb // m) for u, m in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1))
                           if kb % m == 0)
        sizes["%d%s" % (value, unit)] = n
    return sizes


def _hugetlb(v1: dict, limits) -> None:
    if not limits:
        return
    sizes = host_page_sizes()
    for i, h in enumerate(limits):
        field = "linux.resources.hugepageLimits[%d]" % i
        if h["pageSize"] not in sizes:
            raise SmithError("%s.pageSize: this host has no %s huge pages (it has: %s)"
                             % (field, h["pageSize"], ", ".join(sorted(sizes)) or "none"))
        if "hugetlb" not in v1:
            raise _unavailable(field, "hugetlb")
        _write("%s/hugetlb.%s.limit_in_bytes" % (v1["hugetlb"], h["pageSize"]), str(h["limit"]), field)


def _num(n) -> str:
    return "*" if n is None or n == -1 else str(n)


def spawn(dirs: dict, ctx: dict) -> int:
    """Fork a child that starts in the container's cgroup v2 directory if there is one
    (ctx["v2_placed"] tells the child whether that worked); the child then calls enter()."""
    pid = -1
    ctx["v2_placed"] = False
    if dirs.get(""):
        from smith.runtime import libc
        fd = os.open(dirs[""], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        ctx["v2_placed"] = True
        try:
            pid = libc.fork_into_cgroup(fd)
        finally:
            if pid != 0:
                os.close(fd)
        if pid < 0:
            ctx["v2_placed"] = False
    if pid < 0:
        pid = os.fork()
    return pid


def split(dirs: dict):
    """(the v2 directory only, the v1 hierarchies only): {name: dir} each."""
    return ({k: v for k, v in dirs.items() if not k}, {k: v for k, v in dirs.items() if k})


def enter(dirs: dict, v2_placed: bool) -> None:
    """Move the calling single-threaded process into its cgroups itself. Writing "0" to a v1
    `tasks` file moves just this thread, which the kernel does without the global lock that
    makes every cgroup.procs write wait for an RCU grace period (10-30 ms on a busy host).
    (Measured: the runtime writing init's pid into `tasks` instead made `run` ~7 ms slower.)"""
    for name, d in dirs.items():
        if name:
            _write(d + "/tasks", "0")
        elif not v2_placed:
            _write(d + "/cgroup.procs", "0")


def join(dirs: dict, pid: int) -> None:
    """Move pid into every hierarchy. Each cgroup v1 move waits for an RCU grace period
    (~1 ms); moves running at the same time share one, so they run in threads."""
    import _thread
    paths = [d + "/cgroup.procs" for d in dirs.values()]
    errors = []
    lock = _thread.allocate_lock()
    done = _thread.allocate_lock()
    done.acquire()
    left = [len(paths)]

    def move(path):
        try:
            _write(path, str(pid))
        except BaseException as e:
            errors.append(e)
        with lock:
            left[0] -= 1
            if not left[0]:
                done.release()
    for path in paths:
        _thread.start_new_thread(move, (path,))
    if paths:
        done.acquire()
    if errors:
        raise errors[0]


def pids(dirs: dict) -> list:
    """Processes in the container's cgroup (the first hierarchy that has cgroup.procs)."""
    for name in ("pids", "memory", "", "name=systemd"):
        d = dirs.get(name)
        if d and os.path.exists(d + "/cgroup.procs"):
            return [int(x) for x in os.read_text(d + "/cgroup.procs").split()]
    return []


def remove(made: list, timeout: float = 5.0) -> None:
    """rmdir the directories create() made, deepest first; waits for exiting tasks to leave."""
    deadline = time.monotonic() + timeout
    for d in sorted(made, key=lambda p: -p.count("/")):
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno == 16 and time.monotonic() < deadline:  # EBUSY: tasks still exiting
                    time.sleep(0.005)
                    continue
                if e.errno in (16, 39):  # shared parent still in use by others: leave it
                    if d.count("/") > min(p.count("/") for p in made):
                        raise
                    break
                raise
