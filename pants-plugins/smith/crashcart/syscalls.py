"""The Linux calls only crashcart needs, on top of smith.linux (the shared ctypes bindings)."""
from smith import linux


def make_read_only(tree_fd: int) -> None:
    """Read-only, no setuid, no devices; executable even if the toolbox's own file system is
    mounted noexec (e.g. a /tmp)."""
    linux.mount_setattr(tree_fd, linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV,
                        linux.MOUNT_ATTR_NOEXEC)


def set_fs_ids(uid: int, gid: int) -> None:
    """setfsgid + setfsuid: create files as that user while keeping our other credentials
    (it returns the previous id, never an error)."""
    linux.libc().setfsgid(gid)
    linux.libc().setfsuid(uid)


def make_private_mount_ns() -> None:
    """unshare(CLONE_NEWNS) and stop propagation both ways: nothing mounted after this is
    seen by the host."""
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
