"""A container's root: an overlayfs over idmapped views of the store's layer directories.

Why idmapped mounts: layer files are owned by the image user (uid 10) in the shared store, and
each container has its own host id range (base..base+65535). Seen from the container's user
namespace, a file owned by host uid 10 would be `nobody`. Shifting the files on disk cannot
work for a store shared by all ranges, and mapping inside-uid 10 to host-uid 10 would give every
container the same host user again. An idmapped bind mount (kernel >= 5.12; overlayfs accepts
idmapped lower layers since 5.19) shows on-disk id k as host id base+k, which the container's
namespace maps back to k: every container sees its own files as uid 10, with no copying.

Each idmapped layer view is attached under the container directory only long enough to mount
the overlay (overlayfs keeps private clones of its lower mounts), then detached. The overlay is
mounted with relative lowerdir paths from a chdir, so the option string stays short whatever the
store path and however many layers (the mount data is one page).
"""
import os
import stat
from typing import List

from smith import linux
from smith.launch import kernel

# Directories a microcontainer needs as mount points (runc cannot create them on a read-only root).
MOUNT_POINTS = ("dev", "proc", "read", "run", "sys", "write")


def missing_mount_points(layer_dirs: List[str]) -> List[str]:
    """Mount points that no layer provides (top layer first in `layer_dirs`)."""
    missing = []
    for name in MOUNT_POINTS:
        for d in layer_dirs:
            p = os.path.join(d, name)
            if os.path.lexists(p):
                if os.path.isdir(p) and not os.path.islink(p):
                    break
                missing.append(name)  # a file or whiteout hides it: cannot mount there
                break
        else:
            missing.append(name)
    return missing


def mount_root(container_dir: str, layer_dirs: List[str], userns_fd: int,
               writable: bool, id_base: int) -> str:
    """Mount CONTAINER_DIR/root from `layer_dirs` (top layer first); returns the root path.

    `writable` adds CONTAINER_DIR/upper + work. The upper dir's root stands for the image's
    `/`, so it gets the top layer root's mode and owner (shifted by `id_base`, as seen through
    the idmapped lower layers).
    """
    root = os.path.join(container_dir, "root")
    os.makedirs(root, exist_ok=True)
    views = []
    try:
        for i, d in enumerate(layer_dirs):
            view = os.path.join(container_dir, "l%d" % i)
            os.mkdir(view, 0o700)
            kernel.idmapped_bind(d, view, userns_fd, readonly=True)
            views.append(view)
        lower = ":".join(os.path.basename(v) for v in views)
        options = "lowerdir=" + lower
        if writable:
            upper, work = os.path.join(container_dir, "upper"), os.path.join(container_dir, "work")
            os.mkdir(upper, 0o755)
            os.mkdir(work, 0o700)
            top = os.stat(layer_dirs[0])
            os.chown(upper, id_base + top.st_uid, id_base + top.st_gid)
            os.chmod(upper, stat.S_IMODE(top.st_mode))
            options += ",upperdir=upper,workdir=work"
        old = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(container_dir)
            linux.mount("overlay", "root", "overlay", 0 if writable else linux.MS_RDONLY, options)
        finally:
            os.fchdir(old)
            os.close(old)
    finally:
        for v in views:
            linux.umount(v, detach=True)
            os.rmdir(v)
    return root
