"""Build the container's filesystem view inside its new mount namespace (runc's rootfs_linux.go).

Order as in runc: root propagation, bind the rootfs onto itself, the config's mounts, device
nodes, /dev symlinks, (hooks), pivot_root or MS_MOVE+chroot, then after the switch
readonly/masked paths and the read-only root remount.
"""
import os
import stat

from smith.runtime import libc
from smith.runtime.libc import (MNT_DETACH, MS_BIND, MS_MOVE, MS_PRIVATE, MS_RDONLY, MS_REC,
                                MS_REMOUNT, MS_SLAVE, mount)

# option -> (clear?, flag); anything else is passed to the filesystem as data.
FLAGS = {
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "nosuid": (False, libc.MS_NOSUID), "suid": (True, libc.MS_NOSUID),
    "nodev": (False, libc.MS_NODEV), "dev": (True, libc.MS_NODEV),
    "noexec": (False, libc.MS_NOEXEC), "exec": (True, libc.MS_NOEXEC),
    "sync": (False, libc.MS_SYNCHRONOUS), "async": (True, libc.MS_SYNCHRONOUS),
    "dirsync": (False, libc.MS_DIRSYNC), "remount": (False, MS_REMOUNT),
    "mand": (False, libc.MS_MANDLOCK), "nomand": (True, libc.MS_MANDLOCK),
    "noatime": (False, libc.MS_NOATIME), "atime": (True, libc.MS_NOATIME),
    "nodiratime": (False, libc.MS_NODIRATIME), "diratime": (True, libc.MS_NODIRATIME),
    "relatime": (False, libc.MS_RELATIME), "norelatime": (True, libc.MS_RELATIME),
    "strictatime": (False, libc.MS_STRICTATIME), "nostrictatime": (True, libc.MS_STRICTATIME),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
    "nosymfollow": (False, libc.MS_NOSYMFOLLOW), "symfollow": (True, libc.MS_NOSYMFOLLOW),
    "lazytime": (False, libc.MS_LAZYTIME), "nolazytime": (True, libc.MS_LAZYTIME),
}
PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": libc.MS_SHARED, "rshared": libc.MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": libc.MS_UNBINDABLE, "runbindable": libc.MS_UNBINDABLE | MS_REC,
}
IGNORED = {"tmpcopyup", "idmap", "ridmap", "copy-symlink"}

DEFAULT_DEVICES = [  # path, major, minor (all character devices, mode 0666)
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
]
DEV_SYMLINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]
# statvfs f_flag bits that are locked on a bind mount inside a user namespace.
_ST_LOCKED = MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def parse_options(options):
    flags, clear, prop, data = 0, 0, 0, []
    for o in options or ():
        if o in FLAGS:
            unset, f = FLAGS[o]
            if unset:
                flags &= ~f
            else:
                flags |= f
        elif o in PROPAGATION:
            prop |= PROPAGATION[o]
        elif o not in IGNORED:
            data.append(o)
    return flags, prop, ",".join(data) or None


def secure_join(root: str, path: str) -> str:
    """root + path with every symlink resolved as if root were '/', so nothing escapes root."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved = []  # type: list
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if resolved:
                resolved.pop()
            continue
        full = root + "/" + "/".join(resolved + [p])
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            resolved.append(p)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(40, "too many symlinks under %s" % full)
            target = os.readlink(full)
            if target.startswith("/"):
                resolved = []
            parts = [x for x in target.split("/") if x and x != "."] + parts
        else:
            resolved.append(p)
    return root + "/" + "/".join(resolved) if resolved else root


def _mkdirs(path: str) -> None:
    os.makedirs(path, 0o755, exist_ok=True)


def _ensure_file(path: str) -> None:
    _mkdirs(os.path.dirname(path))
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _remount(target: str, flags: int) -> None:
    try:
        mount(None, target, None, flags | MS_REMOUNT)
    except PermissionError:
        # In a user namespace, flags the bind source carries are locked: keep them.
        mount(None, target, None, flags | MS_REMOUNT | (os.statvfs(target).f_flag & _ST_LOCKED))


def prepare_root(rootfs: str, propagation: str) -> None:
    mount(None, "/", None, PROPAGATION[propagation] if propagation else MS_SLAVE | MS_REC)
    mount(rootfs, rootfs, "bind", MS_BIND | MS_REC)


def mount_all(rootfs: str, bundle: str, mounts, userns: bool, cgroup_paths: dict) -> None:
    for m in mounts:
        mount_one(rootfs, bundle, m, userns, cgroup_paths)


def mount_one(rootfs: str, bundle: str, m: dict, userns: bool, cgroup_paths: dict) -> None:
    flags, prop, data = parse_options(m.get("options"))
    kind = m.get("type") or ("bind" if flags & MS_BIND else "")
    dest = secure_join(rootfs, m["destination"])
    source = m.get("source") or kind or "none"
    if flags & MS_BIND or kind == "bind":
        flags |= MS_BIND
        if not source.startswith("/"):
            source = os.path.join(bundle, source)
        if os.path.isdir(source):
            _mkdirs(dest)
        else:
            _ensure_file(dest)
        mount(source, dest, None, flags & (MS_BIND | MS_REC))
        if flags & ~(MS_BIND | MS_REC):
            _remount(dest, flags & ~MS_REC)
    elif kind == "cgroup":
        _mount_cgroups(dest, flags, cgroup_paths)
    else:
        _mkdirs(dest)
        try:
            mount(source, dest, kind, flags, data)
        except PermissionError:
            if kind in ("sysfs", "mqueue") and userns:
                # Not allowed without owning the net/ipc namespace: bind the host's, like runc.
                mount("/" + ("sys" if kind == "sysfs" else "dev/mqueue"), dest, None, MS_BIND | MS_REC)
                _remount(dest, (flags | MS_BIND) & ~MS_REC)
            else:
                raise
    for p in (PROPAGATION[o] for o in (m.get("options") or ()) if o in PROPAGATION):
        mount(None, dest, None, p)


def _mount_cgroups(dest: str, flags: int, cgroup_paths: dict) -> None:
    """A cgroup mount shows the container's own cgroups, as runc does on v1/hybrid hosts: a
    (writable, like runc's) tmpfs with one bind of each hierarchy, read-only if asked."""
    _mkdirs(dest)
    v1 = [n for n in cgroup_paths if n]
    if not v1:  # pure cgroup v2 host: the container's own cgroup directory
        mount(cgroup_paths[""], dest, None, MS_BIND | MS_REC)
        _remount(dest, MS_BIND | (flags & ~MS_REC))
        return
    mount("tmpfs", dest, "tmpfs", flags & ~MS_RDONLY, "mode=755")
    for name, host_dir in sorted(cgroup_paths.items()):
        if not name and v1:
            continue  # like runc on a hybrid host: the container sees the v1 hierarchies only
        name = name[5:] if name.startswith("name=") else (name or "unified")
        target = dest + "/" + name
        _mkdirs(target)
        if os.path.isdir(host_dir):
            mount(host_dir, target, None, MS_BIND | MS_REC)
            _remount(target, MS_BIND | (flags & ~MS_REC))
        if "," in name:  # cpu,cpuacct style: the single names are symlinks, as on the host
            for single in name.split(","):
                if not os.path.lexists(dest + "/" + single):
                    os.symlink(name, dest + "/" + single)


def make_devices(rootfs: str, devices, userns: bool) -> None:
    old = os.umask(0)
    try:
        seen = set()
        for d in devices:
            seen.add(d["path"])
            _make_device(rootfs, d, userns)
        for path, major, minor in DEFAULT_DEVICES:
            if path not in seen:
                _make_device(rootfs, {"path": path, "type": "c", "major": major, "minor": minor,
                                      "fileMode": 0o666, "uid": 0, "gid": 0}, userns)
    finally:
        os.umask(old)


def _make_device(rootfs: str, d: dict, userns: bool) -> None:
    dest = secure_join(rootfs, d["path"])
    if not userns:
        _mkdirs(os.path.dirname(dest))
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d["type"]]
        mode = d.get("fileMode", 0o666) & 0o7777
        if os.path.lexists(dest):
            os.unlink(dest)
        try:
            os.mknod(dest, kind | mode, os.makedev(d.get("major", 0), d.get("minor", 0)))
            os.chown(dest, d.get("uid", 0), d.get("gid", 0))
            return
        except PermissionError:
            pass  # user namespace or a devices cgroup that forbids mknod: bind it, as runc does
    _ensure_file(dest)
    try:
        mount(d["path"], dest, None, MS_BIND)
    except FileNotFoundError:
        raise OSError(2, "linux.devices: %s cannot be created (no mknod permission) and does "
                         "not exist on the host to bind-mount" % d["path"]) from None


def dev_symlinks(rootfs: str) -> None:
    links = list(DEV_SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    for target, link in links:
        dest = secure_join(rootfs, link)
        if not os.path.lexists(dest):
            os.symlink(target, dest)
    ptmx = secure_join(rootfs, "/dev/ptmx")
    if os.path.lexists(ptmx):
        os.unlink(ptmx)
    os.symlink("pts/ptmx", ptmx)


def pivot(rootfs: str) -> None:
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    os.fchdir(new_root)
    libc.pivot_root(".", ".")
    # The old root is now stacked on "."; detach it without propagating the unmount to the host.
    os.fchdir(old_root)
    mount(None, ".", None, MS_SLAVE | MS_REC)
    libc.umount2(".", MNT_DETACH)
    os.chdir("/")
    os.close(old_root)
    os.close(new_root)


def move_root(rootfs: str) -> None:
    """--no-pivot: move the rootfs mount over / and chroot into it (for ramfs roots)."""
    os.chdir(rootfs)
    mount(rootfs, "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def readonly_path(path: str) -> None:
    try:
        mount(path, path, None, MS_BIND | MS_REC)
    except FileNotFoundError:
        return
    _remount(path, MS_BIND | MS_RDONLY)


def mask_path(path: str) -> None:
    try:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY)
        else:
            mount("/dev/null", path, None, MS_BIND)
    except FileNotFoundError:
        pass


def readonly_root() -> None:
    _remount("/", MS_BIND | MS_RDONLY)
