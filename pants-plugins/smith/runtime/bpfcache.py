"""Compiled seccomp programs kept in the runtime's state directory, <root>/@seccomp-bpf/<key>.

Building the runtime-tools default profile with libseccomp costs ~40M instructions, more than
the whole rest of a `run`; the same profile on the same machine always gives the same program.
The key is a sha256 of everything the program depends on: the profile (canonical JSON), the
libseccomp file loaded (device, inode, size, mtime), the kernel release and machine, and
FORMAT (bump it when seccomp.build's output for a given profile changes).

Nothing found there is trusted unless it is what the runtime itself writes: the directory and
the entry are opened with O_NOFOLLOW (no symlink is followed), both must belong to the
runtime's user and be writable by nobody else, the entry must be a regular file of a sane
size holding the magic, its own key, a length that fits, and a sha256 of all that. Anything
else is ignored and the program is compiled again (a bad entry is replaced). Writing is
atomic: a new file under a temporary name, then renamed. A cache failure never fails a run.
`@` cannot occur in a container id, so `list` and the ids never meet the directory.
"""
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)

try:  # the built-in sha256: hashlib loads OpenSSL (10M instructions)
    from _sha256 import sha256
except ImportError:  # Python >= 3.12
    from hashlib import sha256

DIR = "@seccomp-bpf"
FORMAT = b"smith-seccomp-bpf 1\n"
MAX_CODE = 4096 * 8  # BPF_MAXINSNS sock_filter instructions
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def key(*parts: bytes) -> bytes:
    h = sha256(FORMAT)
    for p in parts:
        h.update(len(p).to_bytes(8, "little") + p)
    return h.digest()


def _trusted(st) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _entry(k: bytes, code: bytes) -> bytes:
    body = FORMAT + k + len(code).to_bytes(4, "little") + code
    return body + sha256(body).digest()


def _parse(data: bytes, k: bytes):
    head = len(FORMAT) + 32 + 4
    if len(data) < head + 32 or not data.startswith(FORMAT) or data[len(FORMAT):len(FORMAT) + 32] != k:
        return None
    n = int.from_bytes(data[head - 4:head], "little")
    if not 0 < n <= MAX_CODE or n % 8 or len(data) != head + n + 32:
        return None
    if sha256(data[:head + n]).digest() != data[head + n:]:
        return None
    return data[head:head + n]


def _open_dir(root: str) -> int:
    """The cache directory's fd if it is trustworthy, else -1."""
    try:
        fd = os.open(os.path.join(root, DIR), _OPEN_DIR)
    except OSError:
        return -1
    if not _trusted(os.fstat(fd)):
        os.close(fd)
        return -1
    return fd


def load(root: str, k: bytes):
    """The program stored under key k, or None (absent, or not to be trusted)."""
    dfd = _open_dir(root)
    if dfd < 0:
        return None
    try:
        fd = os.open(k.hex(), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        limit = len(FORMAT) + 32 + 4 + MAX_CODE + 32
        if not (st.st_mode & 0o170000 == 0o100000 and _trusted(st)) or st.st_size > limit:
            return None
        data = b""
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
        return _parse(data, k)
    except OSError:
        return None
    finally:
        os.close(fd)


def store(root: str, k: bytes, code: bytes) -> None:
    """Keep code under key k (best effort: the cache is only a shortcut)."""
    try:
        os.mkdir(os.path.join(root, DIR), 0o700)
    except OSError:
        pass
    dfd = _open_dir(root)
    if dfd < 0:
        return
    tmp = ".tmp-%d" % os.getpid()
    try:
        try:
            os.unlink(tmp, dir_fd=dfd)  # left by a killed run whose pid we now have
        except OSError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            data = _entry(k, code)
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.rename(tmp, k.hex(), src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)
