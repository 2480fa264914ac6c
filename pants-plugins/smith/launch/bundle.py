"""The OCI runtime config (config.json) of one container, from the image config and options."""
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from smith.errors import SmithError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]  # runc's default set


class Options(NamedTuple):
    args: List[str]                 # after `--`: replace Cmd (or the whole command, see whole_command)
    whole_command: bool = False     # args replace Entrypoint too
    env: List[str] = []             # extra K=V, override the image's
    read_dir: Optional[str] = None  # host path mounted at /read (read-only)
    network: str = "none"           # "none": own net namespace with only lo; "host"; "join"
    netns: Optional[str] = None     # network "join": the net namespace file to join (a sidecar)
    writable_root: bool = False
    tty: bool = False
    hostname: str = "smith"


def command(image_config: Dict[str, Any], opts: Options) -> List[str]:
    entrypoint = image_config.get("Entrypoint") or []
    if opts.whole_command:
        argv = list(opts.args)
    else:
        argv = list(entrypoint) + list(opts.args or image_config.get("Cmd") or [])
    if not argv:
        raise SmithError("the image has no Entrypoint or Cmd and no command was given; "
                         "pass one after `--`")
    return argv


def environment(image_config: Dict[str, Any], extra: List[str]) -> List[str]:
    env: Dict[str, str] = {}
    for item in list(image_config.get("Env") or []) + list(extra):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SmithError("environment entry %r is not KEY=VALUE (--env or the image's Env)" % item)
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    return ["%s=%s" % kv for kv in env.items()]


def _entries(rootfs: str, filename: str) -> List[List[str]]:
    """Lines of the image's /etc/passwd or /etc/group, split on ':' (none if it has no such file)."""
    path = os.path.join(rootfs, "etc", filename)
    if not os.path.realpath(path).startswith(os.path.realpath(rootfs) + "/"):
        return []  # a symlink out of the image: read nothing of the host
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.count(":") >= 3]
    except OSError:
        return []


def _number(text: str, what: str, user: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SmithError("the image's User %r: %s %r is not a number in its /etc files" % (user, what, text))


def user_ids(user: str, rootfs: str) -> Tuple[int, int]:
    """The image's `User` ("", "10", "10:10", "name", "name:group") as (uid, gid), as the image
    spec says: names are looked up in the image's /etc/passwd and /etc/group; without a group,
    the user's passwd group, or 0 if the image does not list the user."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    passwd = _entries(rootfs, "passwd")
    if name.isdigit():
        uid = int(name)
        row = next((p for p in passwd if p[2] == name), None)
    else:
        row = next((p for p in passwd if p[0] == name), None)
        if row is None:
            raise SmithError("the image's User %r is not in its /etc/passwd; use a numeric uid[:gid] "
                             "in the image's user field" % user)
        uid = _number(row[2], "uid", user)
    gid = _number(row[3], "gid", user) if row is not None else 0
    if group.isdigit():
        gid = int(group)
    elif group:
        grow = next((g for g in _entries(rootfs, "group") if g[0] == group), None)
        if grow is None:
            raise SmithError("the image's User %r: group %r is not in its /etc/group; use a "
                             "numeric gid" % (user, group))
        gid = _number(grow[2], "gid", user)
    return uid, gid


def mounts(opts: Options, write_dir: str, uid: int, gid: int) -> List[Dict[str, Any]]:
    out = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if opts.network == "none":
        out.append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", "ro"]})
    else:  # host or joined: sysfs cannot be mounted from a user namespace that does not own the net namespace
        out.append({"destination": "/sys", "type": "bind", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    out.append({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=755", "size=65536k",
                            "uid=%d" % uid, "gid=%d" % gid]})
    out.append({"destination": "/write", "type": "bind", "source": write_dir,
                "options": ["rbind", "nosuid", "nodev", "rw"]})
    if opts.read_dir is not None:
        out.append({"destination": "/read", "type": "bind", "source": opts.read_dir,
                    "options": ["rbind", "nosuid", "nodev", "ro"]})
    return out


def config(image_config: Dict[str, Any], opts: Options, uid: int, gid: int, write_dir: str,
           id_base: int, id_size: int) -> Dict[str, Any]:
    """config.json for a bundle whose root is the directory `root` next to it."""
    if max(uid, gid) >= id_size:
        raise SmithError("the image user %d:%d is outside the %d ids mapped per container; raise "
                         "--ids-per-container" % (uid, gid, id_size))
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user", "cgroup")]
    if opts.network == "none":
        namespaces.append({"type": "network"})
    elif opts.network == "join":
        if not opts.netns:
            raise SmithError("network \"join\" needs the path of a network namespace to join")
        namespaces.append({"type": "network", "path": opts.netns})
    env = environment(image_config, opts.env)
    if opts.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": opts.tty,
            "user": {"uid": uid, "gid": gid},
            "args": command(image_config, opts),
            "env": env,
            "cwd": image_config.get("WorkingDir") or "/",
            "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "root", "readonly": not opts.writable_root},
        "hostname": opts.hostname,
        "mounts": mounts(opts, write_dir, uid, gid),
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": id_base, "size": id_size}],
            "gidMappings": [{"containerID": 0, "hostID": id_base, "size": id_size}],
            "namespaces": namespaces,
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
