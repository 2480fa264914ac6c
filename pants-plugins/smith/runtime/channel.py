"""Line messages between the runtime and the container's setup processes over two pipes.

Both ends are created before the first fork; os.pipe() fds are close-on-exec, so the
container's end closes itself when the user program is exec'd (EOF = "exec happened").
"""

from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)


class Channel:
    def __init__(self):
        self.up_r, self.up_w = os.pipe()      # container -> runtime
        self.down_r, self.down_w = os.pipe()  # runtime -> container
        self._buf = b""

    def as_parent(self) -> "Channel":
        os.close(self.up_w)
        os.close(self.down_r)
        self.up_w = self.down_r = -1
        return self

    def as_child(self) -> "Channel":
        os.close(self.up_r)
        os.close(self.down_w)
        self.up_r = self.down_w = -1
        return self

    def send(self, msg: str) -> None:
        fd = self.down_w if self.up_r >= 0 else self.up_w
        data = (msg.replace("\n", " ") + "\n").encode("utf-8", "replace")
        while data:
            data = data[os.write(fd, data):]

    def recv(self) -> str:
        """Next message, or "" at end of file."""
        fd = self.up_r if self.up_r >= 0 else self.down_r
        while b"\n" not in self._buf:
            chunk = os.read(fd, 4096)
            if not chunk:
                return ""
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def expect(self, what: str) -> None:
        got = self.recv()
        if got != what:
            raise RuntimeError("runtime went away during setup (expected %r, got %r)" % (what, got))

    def close(self) -> None:
        for name in ("up_r", "up_w", "down_r", "down_w"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
