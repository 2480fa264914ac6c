"""process.terminal: a pty made inside the container, its master sent over --console-socket
with SCM_RIGHTS (what runc does, and what podman's conmon waits for)."""
import fcntl
import os
import socket
import struct
import termios

from smith.errors import SmithError


def connect(path: str) -> int:
    """Connect in the runtime's mount namespace; the child inherits the socket fd."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise SmithError("--console-socket %s: cannot connect: %s" % (path, e.strerror)) from None
    return s.detach()


def setup_child(sock_fd: int, process: dict) -> None:
    """In the container after pivot_root: make the pty, send the master, make the slave our
    controlling terminal and stdio."""
    master, slave = os.openpty()
    size = process.get("consoleSize")
    if size:
        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
    name = os.ttyname(slave)
    s = socket.socket(fileno=sock_fd)
    try:
        socket.send_fds(s, [name.encode()], [master])
    finally:
        s.close()
    os.close(master)
    user = process["user"]
    os.fchown(slave, user["uid"], -1)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
