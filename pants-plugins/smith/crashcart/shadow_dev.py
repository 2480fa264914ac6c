"""Last resort for a /dev whose file system itself is read-only (not just its mount), with no
/dev/crashcart in it: for the session only, cover /dev with an overlay whose lower layer is
that /dev and whose upper layer is a small private tmpfs, so the mount point can be made.

The overlay is assembled in a private mount namespace of the helper (the host sees none of
it) and attached over the container's /dev with the same mount flags; /dev's own submounts
(pts, shm, mqueue, ...) are cloned back on top, so every device stays reachable. Detaching
the overlay (one lazy unmount of /dev) brings back the container's own /dev mounts, with
their original mount ids: its mountinfo is exactly as before.
"""
import os
from typing import Callable, List, NamedTuple

from smith import linux

SOURCE = "crashcart-dev"  # the overlay's source name: how detach recognises it
FLAGS = {"ro": linux.MOUNT_ATTR_RDONLY, "nosuid": linux.MOUNT_ATTR_NOSUID,
         "nodev": linux.MOUNT_ATTR_NODEV, "noexec": linux.MOUNT_ATTR_NOEXEC}


class DevMount(NamedTuple):
    fstype: str
    source: str
    options: List[str]  # per-mount options (ro, nosuid, ...)
    children: List[str]  # mount points of the mounts directly on top of it
    devno: str = ""  # major:minor of its file system (st_dev)


def dev_mount(pid: int) -> DevMount:
    """The top mount at /dev as pid sees it (mountinfo paths are relative to its root)."""
    rows = []
    with open("/proc/%d/mountinfo" % pid) as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            rows.append((left.split(" "), right.split(" ")))
    top = None
    for fields, rfields in rows:
        if fields[4] == "/dev":
            top = (fields, rfields)
    if top is None:
        return DevMount("", "", [], [])
    fields, rfields = top
    children = [f[4] for f, _ in rows if f[1] == fields[0] and f[4].startswith("/dev/")]
    return DevMount(rfields[0], rfields[1], fields[5].split(","), children, fields[2])


def is_shadowed(dev: DevMount) -> bool:
    return dev.fstype == "overlay" and dev.source == SOURCE


def shadow(dev: DevMount, private_ns: int, enter_container: Callable[[], None]) -> None:
    """Called in the container's mount namespace (entered with enter_container()); returns
    there with /dev/crashcart made."""
    lower = linux.open_tree_clone("/dev", recursive=False)
    kids = [(mp, linux.open_tree_clone(mp, recursive=True)) for mp in dev.children]
    try:
        linux.setns(private_ns, linux.CLONE_NEWNS)
        os.chdir("/")
        # Any directory will do as a base here: this namespace is ours alone.
        linux.mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m,mode=700")
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir("/tmp/" + d, 0o700)
        linux.move_mount(lower, "/tmp/lower")
        st = os.stat("/tmp/lower")  # the overlay's root looks like its upper dir: copy /dev's
        os.chown("/tmp/upper", st.st_uid, st.st_gid)
        os.chmod("/tmp/upper", st.st_mode & 0o7777)
        linux.mount(SOURCE, "/tmp/merged", "overlay", 0,
                    "lowerdir=/tmp/lower,upperdir=/tmp/upper,workdir=/tmp/work")
        os.mkdir("/tmp/merged/crashcart", 0o755)
        os.chown("/tmp/merged/crashcart", st.st_uid, st.st_gid)
        overlay = linux.open_tree_clone("/tmp/merged", recursive=False)
        try:
            flags = 0
            for opt in dev.options:
                flags |= FLAGS.get(opt, 0)
            linux.mount_setattr(overlay, flags)
            enter_container()
            linux.move_mount(overlay, "/dev")
        finally:
            os.close(overlay)
        for mp, fd in kids:
            linux.move_mount(fd, mp)
    finally:
        os.close(lower)
        for _, fd in kids:
            os.close(fd)
