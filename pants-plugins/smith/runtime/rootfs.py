"""Build the container's filesystem view inside its mount namespace (runc's rootfs_linux.go).

Order as in runc: root propagation, bind the rootfs onto itself, the config's mounts, device
nodes, /dev symlinks, process.cwd, (hooks), sysctls, readonly/masked paths, pivot_root (or
MS_MOVE + chroot with --no-pivot, or chroot without a mount namespace), then the root's
propagation and the read-only root remount.

Every path inside the rootfs is resolved by inroot.resolve to a descriptor (symlinks and
".." confined to the rootfs, magic links refused, missing parts made with *at calls), and
every mount goes onto `/proc/self/fd/N` of that descriptor: a symlink swapped in by a racing
process cannot redirect a mkdir or a mount outside the rootfs. Everything that needs the
host's /proc/self/fd is done before the root switch, where it is reachable; afterwards
only "/" itself is touched.
"""
import _stat as stat  # the C module stat.py re-exports: importing stat.py costs ~0.3M instructions

from smith.errors import SmithError
from smith.runtime import libc
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)
from smith.runtime.inroot import entry, fdpath, is_dir, parent, resolve
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
    flags, prop, data = 0, 0, []
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


def _remount(fd: int, flags: int) -> None:
    target = fdpath(fd)
    try:
        mount(None, target, None, flags | MS_REMOUNT)
    except PermissionError:
        # In a user namespace, flags the bind source carries are locked: keep them.
        mount(None, target, None, flags | MS_REMOUNT | (os.statvfs(target).f_flag & _ST_LOCKED))


def _parent_private(rootfs: str) -> None:
    """Make the mount holding rootfs private if it is shared (runc's rootfsParentMountPrivate):
    pivot_root refuses a shared parent, and the bind of the rootfs must not propagate to the
    host. Only with a rootfsPropagation that can leave it shared, so mountinfo is rarely read."""
    best, shared = "", False
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" - ", 1)[0].split()
            point = os.fsdecode(_unescape(fields[4]))
            inside = point == "/" or rootfs == point or rootfs.startswith(point + "/")
            if inside and len(point) >= len(best):
                best, shared = point, any(o.startswith(b"shared:") for o in fields[6:])
    if shared:
        mount(None, best, None, MS_PRIVATE)


def _unescape(field: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    if b"\\" not in field:
        return field
    out, i = bytearray(), 0
    while i < len(field):
        if field[i:i + 1] == b"\\" and field[i + 1:i + 4].isdigit():
            out.append(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def prepare_root(rootfs: str, propagation: str, own_ns: bool) -> int:
    """Bind the rootfs onto itself; returns an O_PATH descriptor of that mount's root.

    own_ns False (no mount namespace in the config: the mounts are made in the runtime's
    namespace, as runc does): the propagation of the host's mounts is left alone."""
    try:
        if own_ns:
            mount(None, "/", None, PROPAGATION[propagation] if propagation else MS_SLAVE | MS_REC)
            if propagation and propagation not in ("rslave", "rprivate", "runbindable"):
                _parent_private(rootfs)  # a shared mount may be left
        mount(rootfs, rootfs, "bind", MS_BIND | MS_REC)
    except OSError as e:
        raise SmithError("root.path %s: cannot bind it onto itself%s: %s" % (
            rootfs, " (linux.rootfsPropagation %s)" % propagation if propagation else "",
            os.strerror(e.errno) if e.errno else e)) from None
    return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def mount_all(root_fd: int, bundle: str, mounts, userns: bool, cgroup_paths: dict) -> None:
    for i, m in enumerate(mounts):
        try:
            mount_one(root_fd, bundle, m, userns, cgroup_paths)
        except SmithError as e:
            raise SmithError("mounts[%d] %s: %s" % (i, m["destination"], e)) from None
        except OSError as e:
            kind = m.get("type") or "bind"
            raise SmithError("mounts[%d] %s: cannot mount %s (type %s) there: %s" % (
                i, m["destination"], m.get("source") or kind, kind,
                os.strerror(e.errno) if e.errno else e)) from None


def mount_one(root_fd: int, bundle: str, m: dict, userns: bool, cgroup_paths: dict) -> None:
    flags, prop, data = parse_options(m.get("options"))
    kind = m.get("type") or ("bind" if flags & MS_BIND else "")
    dest = m["destination"]
    source = m.get("source") or kind or "none"
    make = "dir"
    if kind != "cgroup" and (flags & MS_BIND or kind == "bind"):
        flags |= MS_BIND
        if not source.startswith("/"):
            source = os.path.join(bundle, source)
        make = "dir" if os.path.isdir(source) else "file"
    at = entry(root_fd, dest, make, follow=kind not in ("proc", "sysfs"))
    fd = at[2]
    try:
        if kind in ("proc", "sysfs") and (at[0] is None or not is_dir(fd)):
            # proc and sysfs only on an ordinary directory (runc's check; the CVE-2019-16884 and
            # CVE-2019-19921 class: a /proc that is a symlink would put procfs elsewhere).
            raise SmithError('filesystem "%s" must be mounted on ordinary directory; in the rootfs '
                             '%s is not one (a symlink or a file)' % (kind, dest))
        if kind == "cgroup":
            _mount_cgroups(at, flags, cgroup_paths)
        elif flags & MS_BIND:
            mount(source, fdpath(fd), None, flags & (MS_BIND | MS_REC))
            if flags & ~(MS_BIND | MS_REC):
                _on_mount(at, lambda new: _remount(new, flags & ~MS_REC))
        else:
            try:
                mount(source, fdpath(fd), kind, flags, data)
            except PermissionError:
                if kind not in ("sysfs", "mqueue") or not userns:
                    raise
                # Not allowed without owning the net/ipc namespace: bind the host's, like runc.
                mount("/" + ("sys" if kind == "sysfs" else "dev/mqueue"), fdpath(fd), None, MS_BIND | MS_REC)
                _on_mount(at, lambda new: _remount(new, (flags | MS_BIND) & ~MS_REC))
        for p in (PROPAGATION[o] for o in (m.get("options") or ()) if o in PROPAGATION):
            _on_mount(at, lambda new: mount(None, fdpath(new), None, p))
    finally:
        _close(at)


def _close(at: tuple) -> None:
    if at[0] is not None:
        os.close(at[0])
    os.close(at[2])


def _on_mount(at: tuple, action) -> None:
    """Act on the mount just made on at = (parent, name, fd) from inroot.entry. fd still names
    the directory under the mount (a magic link does not cross mounts); the name opened in
    the held parent is the mount's root, and nothing on the way can be swapped."""
    parent_fd, name, fd = at
    if parent_fd is None:  # the rootfs itself
        name = os.path.basename(os.readlink(fdpath(fd)))
        parent_fd = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        new = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    finally:
        if parent_fd != at[0]:
            os.close(parent_fd)
    try:
        if stat.S_ISLNK(os.fstat(new).st_mode):
            raise OSError(40, "%s was replaced by a symlink while it was mounted" % name)
        action(new)
    finally:
        os.close(new)


def _mount_cgroups(at: tuple, flags: int, cgroup_paths: dict) -> None:
    """A cgroup mount shows the container's own cgroups, as runc does on v1/hybrid hosts: a
    (writable, like runc's) tmpfs with one bind of each hierarchy, read-only if asked."""
    v1 = [n for n in cgroup_paths if n]
    if not v1:  # pure cgroup v2 host: the container's own cgroup directory
        mount(cgroup_paths[""], fdpath(at[2]), None, MS_BIND | MS_REC)
        _on_mount(at, lambda new: _remount(new, MS_BIND | (flags & ~MS_REC)))
        return
    mount("tmpfs", fdpath(at[2]), "tmpfs", flags & ~MS_RDONLY, "mode=755")
    _on_mount(at, lambda tmpfs: _cgroup_binds(tmpfs, flags, cgroup_paths))


def _cgroup_binds(tmpfs: int, flags: int, cgroup_paths: dict) -> None:
    for name, host_dir in sorted(cgroup_paths.items()):
        if not name:
            continue  # like runc on a hybrid host: the container sees the v1 hierarchies only
        name = name[5:] if name.startswith("name=") else name
        target = entry(tmpfs, name, "dir")
        try:
            if os.path.isdir(host_dir):
                mount(host_dir, fdpath(target[2]), None, MS_BIND | MS_REC)
                _on_mount(target, lambda new: _remount(new, MS_BIND | (flags & ~MS_REC)))
        finally:
            _close(target)
        if "," in name:  # cpu,cpuacct style: the single names are symlinks, as on the host
            for single in name.split(","):
                try:
                    os.symlink(name, single, dir_fd=tmpfs)
                except FileExistsError:
                    pass


def make_devices(root_fd: int, devices, userns: bool) -> None:
    old = os.umask(0)
    try:
        seen = set()
        for i, d in enumerate(devices):
            seen.add(d["path"])
            try:
                _make_device(root_fd, d, userns)
            except OSError as e:
                raise SmithError("linux.devices[%d] %s: cannot create it: %s" % (
                    i, d["path"], os.strerror(e.errno) if e.errno else e)) from None
        for path, major, minor in DEFAULT_DEVICES:
            if path not in seen:
                _make_device(root_fd, {"path": path, "type": "c", "major": major, "minor": minor,
                                       "fileMode": 0o666, "uid": 0, "gid": 0}, userns)
    finally:
        os.umask(old)


def _make_device(root_fd: int, d: dict, userns: bool) -> None:
    if not userns:
        dir_fd, name = parent(root_fd, d["path"], make=True)
        try:
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d["type"]]
            mode = d.get("fileMode", 0o666) & 0o7777
            try:
                os.unlink(name, dir_fd=dir_fd)  # never follows: removes a symlink, not its target
            except FileNotFoundError:
                pass
            try:
                os.mknod(name, kind | mode, os.makedev(d.get("major", 0), d.get("minor", 0)), dir_fd=dir_fd)
                os.chown(name, d.get("uid", 0), d.get("gid", 0), dir_fd=dir_fd, follow_symlinks=False)
                return
            except PermissionError:
                pass  # user namespace or a devices cgroup that forbids mknod: bind it, as runc does
        finally:
            os.close(dir_fd)
    fd = resolve(root_fd, d["path"], make="file", follow=False)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise OSError(40, "%s in the rootfs is a symlink" % d["path"])
        try:
            mount(d["path"], fdpath(fd), None, MS_BIND)
        except FileNotFoundError:
            raise SmithError("linux.devices: %s cannot be created (no mknod permission) and does "
                             "not exist on the host to bind-mount" % d["path"]) from None
    finally:
        os.close(fd)


def dev_symlinks(root_fd: int) -> None:
    links = list(DEV_SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    dev = resolve(root_fd, "/dev", make="dir")
    try:
        for target, link in links:
            try:
                os.symlink(target, link[5:], dir_fd=dev)
            except FileExistsError:
                pass
        try:
            os.unlink("ptmx", dir_fd=dev)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev)
    finally:
        os.close(dev)


def make_cwd(root_fd: int, cwd: str) -> None:
    """Create process.cwd in the rootfs if it is missing (as root, 0755), as runc does."""
    try:
        os.close(resolve(root_fd, cwd, make="dir"))
    except OSError as e:
        raise SmithError("process.cwd %s: cannot create it in the rootfs: %s" % (
            cwd, os.strerror(e.errno) if e.errno else e)) from None


def enter_cwd(cwd: str) -> None:
    """chdir into process.cwd of the container (the root is the container's by now), without
    following a magic link out of it (/proc/PID/cwd, /proc/self/root: the CVE-2024-21626 class)."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = resolve(root, cwd)
    except OSError as e:
        raise SmithError("process.cwd %s: cannot enter it in the container: %s" % (
            cwd, os.strerror(e.errno) if e.errno else e)) from None
    finally:
        os.close(root)
    try:
        os.fchdir(fd)
    except OSError as e:
        raise SmithError("process.cwd %s: cannot enter it in the container: %s" % (cwd, e.strerror)) from None
    finally:
        os.close(fd)


def write_sysctls(root_fd: int, sysctl: dict) -> None:
    """Through the container's own procfs (values of net/ipc/uts keys are those of the writer's
    namespaces, which are the container's)."""
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = libc.openat2(root_fd, path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                              libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)
        except OSError as e:
            if e.errno != 38:
                raise SmithError("linux.sysctl %s: cannot open %s in the container: %s" % (
                    key, path, os.strerror(e.errno))) from None
            ro = resolve(root_fd, path)
            try:
                fd = os.open(fdpath(ro), os.O_WRONLY | os.O_CLOEXEC)
            finally:
                os.close(ro)
        try:
            os.write(fd, value.encode())
        except OSError as e:
            raise SmithError("linux.sysctl %s: cannot set it to %r: %s" % (key, value, e.strerror)) from None
        finally:
            os.close(fd)


def pivot(root_fd: int) -> None:
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    os.fchdir(root_fd)
    libc.pivot_root(".", ".")
    # The old root is now stacked on "."; detach it without propagating the unmount to the host.
    os.fchdir(old_root)
    mount(None, ".", None, MS_SLAVE | MS_REC)
    libc.umount2(".", MNT_DETACH)
    os.chdir("/")
    os.close(old_root)


def move_root(root_fd: int) -> None:
    """--no-pivot: move the rootfs mount over / and chroot into it (for ramfs roots)."""
    os.fchdir(root_fd)
    mount(".", "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def chroot(root_fd: int) -> None:
    """No mount namespace of its own: runc chroots (pivot_root would move the host's root)."""
    os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")


def root_propagation(propagation: str) -> None:
    """Apply linux.rootfsPropagation to the container's "/" once it is the root (as runc does
    since 1.2; before the switch it would change the host's mount or fail pivot_root)."""
    flag = PROPAGATION.get(propagation or "", 0)
    if flag and not flag & MS_PRIVATE:
        mount(None, "/", None, flag)


def readonly_path(root_fd: int, path: str) -> None:
    try:
        at = entry(root_fd, path)
    except FileNotFoundError:
        return
    try:
        mount(fdpath(at[2]), fdpath(at[2]), None, MS_BIND | MS_REC)
        _on_mount(at, lambda new: _remount(new, MS_BIND | MS_RDONLY))
    finally:
        _close(at)


def dev_null(root_fd: int) -> int:
    """A descriptor of the container's /dev/null if it really is the null device, else of the
    host's: a /dev/null swapped for a symlink or another file must not be bound over the masked
    paths (the CVE-2025-31133 class)."""
    try:
        fd = resolve(root_fd, "/dev/null", follow=False)
    except OSError:
        fd = -1
    if fd >= 0:
        st = os.fstat(fd)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            return fd
        os.close(fd)
    fd = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)):
        os.close(fd)
        raise SmithError("/dev/null of the host is not the null device")
    return fd


def mask_path(root_fd: int, path: str, null_fd: int) -> None:
    try:
        fd = resolve(root_fd, path)
    except FileNotFoundError:
        return
    try:
        if is_dir(fd):
            mount("tmpfs", fdpath(fd), "tmpfs", MS_RDONLY)
        else:
            mount(fdpath(null_fd), fdpath(fd), None, MS_BIND)
    finally:
        os.close(fd)


def readonly_root() -> None:
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _remount(fd, MS_BIND | MS_RDONLY)
    finally:
        os.close(fd)
