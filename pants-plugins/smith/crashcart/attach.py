"""Attach the toolbox read-only at /dev/crashcart inside a process's mount namespace, and
detach it again.

The detached copy is made in our own namespace (open_tree(OPEN_TREE_CLONE), where the toolbox
path means something) and made read-only before anyone can see it; a forked helper then joins
the target's mount namespace (and its root, which may be a chroot) and move_mount()s it into
place, so crashcart itself never leaves the host's namespaces.

The mount point is a real directory /dev/crashcart (never a symlink: it is opened with
O_NOFOLLOW and the toolbox is mounted on that fd, so the container cannot redirect it). When
the image has none, it is made as the container's root, and only ever on a file system that
belongs to the container alone: a tmpfs that is mounted nowhere in crashcart's (the host's)
mount namespace.
1. mkdir /dev/crashcart (runc and smith-runtime mount a private writable tmpfs on /dev);
2. /dev is a read-only mount of such a tmpfs (readonlyPaths): mkdir through a private,
   writable copy of that mount; nothing in the container's mount table changes;
3. otherwise (/dev's file system is read-only, or shared with the host: devtmpfs, a bind of
   the host's /dev): shadow_dev covers /dev with an overlay whose upper layer is a private
   tmpfs, for the session; the directory is made there and nothing is written below.
Detaching removes the mount (and the directory, or the overlay), so the container's
mountinfo is as it was. --unmount finds a toolbox wherever it is mounted in the target (by
its file system and root, as mountinfo shows them), not only at /dev/crashcart.
"""
import errno
import os
import stat
import traceback
from typing import Callable, List, Optional, Set, Tuple

from smith import linux
from smith.crashcart import shadow_dev, syscalls
from smith.errors import SmithError

MOUNT_POINT = "/dev/crashcart"
MANIFEST = "crashcart-toolbox.json"


def check_toolbox(path: str) -> str:
    if not os.path.isdir(path):
        raise SmithError("toolbox %s does not exist; build one with `python -m "
                         "smith.crashcart.toolbox --output DIR TREES...` (a smith_toolbox target) "
                         "and pass --toolbox DIR" % path)
    if not os.path.isfile(os.path.join(path, MANIFEST)):
        raise SmithError("%s is not a crashcart toolbox (it has no %s); pass the directory that "
                         "`smith.crashcart.toolbox` wrote" % (path, MANIFEST))
    return os.path.abspath(path)


def _mountinfo(pid: "int | str") -> List[List[str]]:
    try:
        with open("/proc/%s/mountinfo" % pid) as f:
            return [line.split(" ") for line in f]
    except OSError:  # ENOENT once reaped, EINVAL while a zombie
        return []  # the process is gone, and its mounts with it


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounted(pid: int) -> bool:
    """Whether /dev/crashcart is a mount point as the process sees it (mountinfo paths are
    relative to its root)."""
    return any(_unescape(f[4]) == MOUNT_POINT for f in _mountinfo(pid))


def toolbox_identity(toolbox: Optional[str]) -> Optional[Tuple[str, str]]:
    """(major:minor, root) that a mount of the toolbox shows in mountinfo: its file system and
    its path inside it, found from the mount that holds it here."""
    if not toolbox or not os.path.isdir(toolbox):
        return None
    real = os.path.realpath(toolbox)
    st = os.stat(real)
    devno = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    best = None
    for f in _mountinfo("self"):
        mp = _unescape(f[4])
        if f[2] == devno and (real == mp or real.startswith(mp.rstrip("/") + "/")):
            if best is None or len(mp) > len(best[0]):
                best = (mp, _unescape(f[3]))
    if best is None:
        return None
    mp, root = best
    rel = real[len(mp.rstrip("/")):]
    return devno, (root.rstrip("/") + rel) or "/"


def attached_at(pid: int, toolbox: Optional[str]) -> List[str]:
    """Every mount point of the toolbox in pid's mount namespace: /dev/crashcart, and any other
    place a mount of the toolbox ended up (e.g. one made through a symlink by an older crashcart)."""
    ident = toolbox_identity(toolbox)
    points = []
    for f in _mountinfo(pid):
        mp = _unescape(f[4])
        if mp == MOUNT_POINT or (ident is not None and (f[2], _unescape(f[3])) == ident):
            points.append(mp)
    return sorted(set(points))


def in_child(work: Callable[[], str]) -> str:
    """Run work() in a forked child (which may change namespaces freely) and return its
    string result; a SmithError or OSError in the child is raised here."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            msg = b"ok:" + work().encode()
        except SmithError as e:
            msg, code = b"error:" + str(e).encode(), 1
        except BaseException:
            msg, code = b"error:crashcart bug: " + traceback.format_exc().encode(), 2
        try:
            os.write(w, msg)
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode(errors="replace")
    os.waitpid(pid, 0)
    if out.startswith("ok:"):
        return out[3:]
    raise SmithError(out[6:] if out.startswith("error:") else "helper process died: %r" % out)


class MountNs:
    """A process's mount namespace and its root directory in it: setns() alone would put us
    at the namespace's root, but a process may be chrooted below it (runc --no-pivot)."""

    def __init__(self, pid: int, what: str):
        self.what = what
        try:
            self.ns = os.open("/proc/%d/ns/mnt" % pid, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SmithError("%s has exited" % what)
        try:
            self.root = os.open("/proc/%d/root" % pid, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            os.close(self.ns)
            raise SmithError("%s has exited" % what)

    def enter(self) -> None:
        try:
            linux.setns(self.ns, linux.CLONE_NEWNS)
        except OSError as e:
            raise SmithError("cannot enter the mount namespace of %s: %s"
                             % (self.what, e.strerror))
        os.fchdir(self.root)
        os.chroot(".")
        os.chdir("/")

    def close(self) -> None:
        os.close(self.ns)
        os.close(self.root)


def container_root(pid: int) -> Tuple[int, int]:
    """The host uid and gid that are 0 in pid's user namespace (0, 0 without one)."""
    ids = []
    for name in ("uid_map", "gid_map"):
        with open("/proc/%d/%s" % (pid, name)) as f:
            for line in f:
                inside, outside, count = (int(x) for x in line.split())
                if inside == 0:
                    ids.append(outside)
                    break
            else:
                ids.append(-1)
    return ids[0], ids[1]


def _as_container_root(uid: int, gid: int, fn: Callable[[], None]) -> None:
    """Create files as the container's root: a tmpfs mounted in a user namespace refuses
    files owned by ids it cannot map (host root is one), with EOVERFLOW."""
    if (uid, gid) == (0, 0):
        return fn()
    if uid < 0 or gid < 0:
        raise SmithError("root is not mapped in the user namespace")
    syscalls.set_fs_ids(uid, gid)
    try:
        fn()
    finally:
        syscalls.set_fs_ids(0, 0)


def _through_writable_clone(fn: Callable[[int], None]) -> None:
    """Run fn(dir_fd) on a private, writable copy of the /dev mount: a read-only bind of a
    tmpfs (e.g. runtime-spec readonlyPaths) still has a writable file system under it, and
    the copy changes none of the container's mounts. It is gone when its fd is closed."""
    fd = linux.open_tree_clone("/dev", recursive=False)
    try:
        linux.mount_setattr(fd, 0, linux.MOUNT_ATTR_RDONLY)
        fn(fd)
    finally:
        os.close(fd)


def _ro_bind_of_tmpfs(dev: shadow_dev.DevMount) -> bool:
    return dev.fstype in ("tmpfs", "devtmpfs") and "ro" in dev.options


def host_devnos() -> Set[str]:
    """major:minor of every file system mounted in crashcart's own (the host's) namespace."""
    return {f[2] for f in _mountinfo("self")}


def private_to_container(dev: shadow_dev.DevMount, host: Set[str]) -> bool:
    """/dev's file system is the container's own: a tmpfs that the host has mounted nowhere.
    devtmpfs is one file system for the whole machine; a bind of a host directory is the host's."""
    return dev.fstype == "tmpfs" and bool(dev.devno) and dev.devno not in host


def _lstat(path: str) -> Optional[os.stat_result]:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _make_mount_point(what: str, dev: shadow_dev.DevMount, uid: int, gid: int,
                      private_ns: int, container: MountNs, private: bool) -> None:
    """A real directory /dev/crashcart: the image's own, or made as the container's root on
    /dev's file system only when that is private to the container (through a writable copy of
    a read-only mount of it); otherwise under a session-long overlay (shadow_dev) whose upper
    layer is a private tmpfs: nothing is ever created on a file system shared with the host."""
    name = os.path.basename(MOUNT_POINT)
    top = _lstat("/dev")
    if top is None or not stat.S_ISDIR(top.st_mode):
        raise SmithError("/dev in %s is %s; crashcart attaches only below a real /dev directory"
                         % (what, "missing" if top is None else "not a directory (a symlink?)"))
    st = _lstat(MOUNT_POINT)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            return  # shipped by the image: used as it is
        raise SmithError("%s in %s is not a directory (a symlink or a file); crashcart mounts "
                         "only on a real directory there, never through a link" % (MOUNT_POINT, what))
    err: Optional[OSError] = None
    if private:
        try:
            _as_container_root(uid, gid, lambda: os.mkdir(MOUNT_POINT, 0o755))
            return
        except FileExistsError:
            return  # made meanwhile; it is opened without following links below
        except OSError as e:
            err = e
        if err.errno == errno.EROFS and _ro_bind_of_tmpfs(dev):
            try:
                _through_writable_clone(lambda fd: _as_container_root(
                    uid, gid, lambda: os.mkdir(name, 0o755, dir_fd=fd)))
                return
            except OSError as e:
                err = e
    if err is None or err.errno == errno.EROFS:
        try:
            shadow_dev.shadow(dev, private_ns, container.enter)
            return
        except OSError as e:
            why = "/dev there is %s and covering it with an overlay failed (%s)" % (
                "read-only" if err is not None else "not the container's own tmpfs", e)
    else:
        why = err.strerror
    raise SmithError(
        "cannot create %s in %s: %s. Add an empty /dev/crashcart directory to the image or "
        "keep /dev a tmpfs (runc and smith-runtime mount one there by default)"
        % (MOUNT_POINT, what, why))


def _mount_on_mount_point(tree: int, what: str) -> None:
    """Mount the toolbox on /dev/crashcart held by an O_PATH fd opened without following links:
    the container cannot swap in a symlink to send it elsewhere."""
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        dev = os.open("/dev", flags)
        try:
            fd = os.open(os.path.basename(MOUNT_POINT), flags, dir_fd=dev)
        finally:
            os.close(dev)
    except OSError as e:
        raise SmithError("cannot open %s in %s as a directory without following links: %s"
                         % (MOUNT_POINT, what, e.strerror))
    try:
        linux.move_mount_to_fd(tree, fd, MOUNT_POINT)
    except OSError as e:
        raise SmithError("cannot mount the toolbox at %s in %s: %s" % (MOUNT_POINT, what, e))
    finally:
        os.close(fd)


def _remove_mount_point(dev: shadow_dev.DevMount) -> None:
    try:
        os.rmdir(MOUNT_POINT)
    except OSError as e:
        if e.errno == errno.EROFS and _ro_bind_of_tmpfs(dev):
            try:
                name = os.path.basename(MOUNT_POINT)
                _through_writable_clone(lambda fd: os.rmdir(name, dir_fd=fd))
            except OSError:
                pass
        # else: shipped by the image on a read-only /dev, or another mount is on top


def attach(pid: int, what: str, toolbox: str) -> None:
    try:
        tree = linux.open_tree_clone(toolbox)
    except OSError as e:
        raise SmithError("cannot clone the toolbox mount %s: %s (needs Linux >= 5.2 and root)"
                         % (toolbox, e.strerror))
    try:
        syscalls.make_read_only(tree)

        uid, gid = container_root(pid)
        dev = shadow_dev.dev_mount(pid)
        private = private_to_container(dev, host_devnos())
        container = MountNs(pid, what)

        def work() -> str:
            # A namespace of our own first: shadow_dev may need a place to build an overlay.
            syscalls.make_private_mount_ns()
            private_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            container.enter()
            _make_mount_point(what, dev, uid, gid, private_ns, container, private)
            _mount_on_mount_point(tree, what)
            return ""
        try:
            in_child(work)
        finally:
            container.close()
    finally:
        os.close(tree)


def detach(pid: int, what: str, toolbox: Optional[str] = None) -> None:
    """Lazily unmount the toolbox (a tool may still hold it) wherever it is mounted in pid's
    namespace (attached_at), and remove /dev/crashcart if it is empty and writable, or the
    overlay over /dev: the container's mountinfo and /dev are as before."""
    dev = shadow_dev.dev_mount(pid)
    elsewhere = [p for p in attached_at(pid, toolbox) if p != MOUNT_POINT]
    at_mount_point = mounted(pid)
    container = MountNs(pid, what)

    def work() -> str:
        container.enter()
        for point in elsewhere:  # never through a symlink planted since
            try:
                linux.umount_nofollow(point)
            except OSError as e:
                raise SmithError("cannot unmount the toolbox at %s in %s: %s" % (point, what, e.strerror))
        if not at_mount_point:
            return ""
        # Under our overlay, unmounting /dev itself takes the toolbox along.
        target = "/dev" if shadow_dev.is_shadowed(dev) else MOUNT_POINT
        try:
            linux.umount_nofollow(target)
        except OSError as e:
            raise SmithError("cannot unmount %s in %s: %s" % (target, what, e.strerror))
        if target == MOUNT_POINT:
            _remove_mount_point(dev)
        return ""
    try:
        in_child(work)
    finally:
        container.close()
