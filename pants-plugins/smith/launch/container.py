"""One container from start to cleanup: layers from the store, an id range from the pool,
an overlay root, a bundle, the runtime in the foreground, and everything removed afterwards.

Container directory STORE/c/<host id base> (short: it is the overlay's chdir):
  root/         the overlay mount (read-only unless --writable-root: then upper/ + work/)
  write/        /write (owned by the image user as mapped), removed unless a --write dir is given
  read/         an idmapped view of the --read directory, when its filesystem allows one
  config.json   the bundle config
  stdout.log    the output of a detached container (start_detached), and stderr.log
The runtime's container id is smith-<store hash>-<host id base>.

A detached container (service tests) is started with start_detached(), signalled with kill(),
and stopped with teardown(keep_write=True) when the same container (same id range, same
/write) starts again with setup() + start_detached(); cleanup() ends it for good.
"""
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional

from smith import linux
from smith.errors import SmithError
from smith.launch import bundle, kernel, rootfs
from smith.launch.id_pool import IdPool, IdRange
from smith.oci.image_source import Image
from smith.launch.layer_store import LayerStore

TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TIMED_OUT = 124  # exit code after --timeout, as timeout(1) uses


# Called as watch(image source path, root) once a container's root is mounted, before the
# runtime starts: `smith trace` (oci/trace.py) watches the root's file system from here.
ROOT_WATCHERS: List[Callable[[str, str], None]] = []


class Settings(NamedTuple):
    store: str = "/var/lib/smith"
    runtime: str = "runc"
    id_base: int = 100000
    id_size: int = 65536
    id_count: int = 4096
    verbose: bool = False


class Result(NamedTuple):
    exit_code: int
    stdout: bytes      # empty unless captured
    stderr: bytes
    timed_out: bool


def log(settings: Settings, text: str) -> None:
    if settings.verbose:
        print("smith launch: " + text, file=sys.stderr, flush=True)


def _runtime_env() -> Dict[str, str]:
    return {"PATH": os.environ.get("PATH") or TOOL_PATH}


def _resolve_runtime(runtime: str) -> str:
    found = shutil.which(runtime, path=_runtime_env()["PATH"]) if "/" not in runtime else runtime
    if not found or not os.access(found, os.X_OK):
        raise SmithError("the OCI runtime %r was not found; install runc or pass --runtime PATH" % runtime)
    return os.path.abspath(found)


def require_root() -> None:
    if os.geteuid() != 0:
        raise SmithError("running an image needs root (it mounts overlayfs and creates a user "
                         "namespace per container); run as root, e.g. with sudo")


def require_user_namespaces() -> None:
    with open("/proc/self/uid_map") as f:
        own_map = f.read().split()
    if own_map != ["0", "0", "4294967295"]:
        raise SmithError("the launcher itself runs in a user namespace (uid_map %s), so it cannot "
                         "give containers host id ranges of their own; run it as root of the host "
                         "(e.g. not inside rootless podman/docker or `unshare --user`)" % " ".join(own_map))
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            limit = int(f.read())
    except (OSError, ValueError):
        limit = 1
    if limit == 0:
        raise SmithError("user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0); "
                         "the launcher gives each container its own. Enable them with "
                         "`sysctl user.max_user_namespaces=15000`")


def require_reachable(path: str, what: str) -> None:
    """A container's root user is an unprivileged host uid: it must be able to walk to its
    root, so every parent needs o+x. (runc opens bind-mount sources such as /write and /read
    from the host side, so those may live anywhere.)"""
    probe = os.path.dirname(os.path.abspath(path))
    while True:
        mode = os.stat(probe).st_mode
        if not mode & 0o001:
            raise SmithError("%s is not searchable by other users (mode %o), so containers in user "
                             "namespaces cannot reach %s %s; chmod o+x it or use another directory"
                             % (probe, mode & 0o777, what, path))
        if probe == "/":
            return
        probe = os.path.dirname(probe)


def preflight(settings: Settings) -> None:
    require_root()
    require_user_namespaces()
    containers = os.path.join(os.path.abspath(settings.store), "c")
    os.makedirs(containers, mode=0o711, exist_ok=True)
    require_reachable(os.path.join(containers, "x"), "the store (--store)")


def _user_namespace(r: IdRange) -> int:
    try:
        return kernel.user_namespace(r.base, r.base, r.size)
    except OSError as e:
        raise SmithError("user namespaces are not available (%s); the launcher gives each container "
                         "its own. Check /proc/sys/user/max_user_namespaces and that this is not "
                         "itself a restricted container" % e)


def _quiet(argv: List[str]) -> None:
    subprocess.run(argv, env=_runtime_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def runtime_id(store: str, container: str) -> str:
    """The runtime's container id: unique per store too, as runtimes share one state dir."""
    tag = hashlib.sha256(os.path.realpath(store).encode()).hexdigest()[:8]
    return "smith-%s-%s" % (tag, container)


def remove_container_dir(cdir: str) -> None:
    """Unmount whatever is under `cdir`, then delete it (never through a mount)."""
    for point in kernel.mounts_under(cdir):
        linux.umount(point, detach=True)
    if kernel.mounts_under(cdir):
        raise SmithError("%s still has mounts after unmounting; not removing it" % cdir)
    shutil.rmtree(cdir, ignore_errors=True)


class Container:
    def __init__(self, image: Image, opts: bundle.Options, settings: Settings,
                 write_dir: Optional[str] = None) -> None:
        self.image, self.opts, self.settings = image, opts, settings
        self.config = image.runtime_config()  # Entrypoint, Cmd, Env, User, WorkingDir
        self.keep_write = write_dir
        self.store = LayerStore(settings.store)
        self.pool = IdPool(settings.store, settings.id_base, settings.id_size, settings.id_count)
        self.runtime = _resolve_runtime(settings.runtime)
        self.ids: Optional[IdRange] = None
        self.dir = ""
        self.id = ""

    # -- setup ---------------------------------------------------------------------------
    def _layers(self) -> List[str]:
        dirs = []
        for layer in self.image.layers:
            path, fresh = self.store.ensure(self.image.store, layer)
            log(self.settings, "%s layer %s" % ("unpacked" if fresh else "reusing", layer.diff_id))
            dirs.append(path)
        return dirs[::-1]  # top first, as overlayfs lists lower dirs

    def _reap(self, stale: IdRange) -> None:
        log(self.settings, "cleaning up container %s of dead launcher %d" % (stale.container, stale.pid))
        _quiet([stale.runtime, "delete", "--force", runtime_id(self.settings.store, stale.container)])
        remove_container_dir(os.path.join(self.settings.store, "c", stale.container))

    def setup(self) -> str:
        """Prepare the bundle; returns its directory. After teardown(keep_write=True) it
        prepares the same container again: same id range, same directory and /write."""
        preflight(self.settings)
        again = self.ids is not None
        with self.store.in_use():
            lowers = self._layers()
            if not again:
                self.ids = self.pool.allocate(lambda base: str(base), self.runtime, self._reap,
                                              layers=[layer.diff_id for layer in self.image.layers])
        self.id = runtime_id(self.settings.store, self.ids.container)
        self.dir = os.path.join(self.settings.store, "c", self.ids.container)
        if not again:
            remove_container_dir(self.dir)  # leftovers of a range freed without cleanup
            os.mkdir(self.dir, 0o711)
        userns = _user_namespace(self.ids)
        try:
            if not self.opts.writable_root:
                missing = rootfs.missing_mount_points(lowers)
                if missing:
                    lowers.insert(0, self.store.mountpoints_dir(missing))
                if len(lowers) == 1:
                    lowers.append(self.store.empty_dir())
            try:
                root = rootfs.mount_root(self.dir, lowers, userns, self.opts.writable_root,
                                         id_base=self.ids.base)
            except OSError as e:
                raise SmithError("could not mount the container root from the store %s: %s (needs "
                                 "overlayfs and idmapped mounts, Linux >= 5.19, on a local file "
                                 "system such as ext4, xfs, btrfs or tmpfs)" % (self.settings.store, e))
            for watch in ROOT_WATCHERS:
                watch(self.image.store.path, root)
            uid, gid = bundle.user_ids(self.config.get("User") or "", root)
            write = self._write_dir(uid, gid)
            opts = self.opts._replace(read_dir=self._read_dir(userns))
            config = bundle.config(self.config, opts, uid, gid, write, self.ids.base, self.ids.size)
        finally:
            os.close(userns)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        return self.dir

    def _write_dir(self, uid: int, gid: int) -> str:
        path = self.keep_write or os.path.join(self.dir, "write")
        os.makedirs(path, mode=0o700, exist_ok=True)  # the container's user's data, no one else's
        os.chown(path, self.ids.base + uid, self.ids.base + gid)
        return os.path.abspath(path)

    def _read_dir(self, userns: int) -> Optional[str]:
        if self.opts.read_dir is None:
            return None
        source = os.path.abspath(self.opts.read_dir)
        if not os.path.isdir(source):
            raise SmithError("--read %s is not a directory" % self.opts.read_dir)
        view = os.path.join(self.dir, "read")
        os.mkdir(view, 0o700)
        try:  # host root's files show as the container's root, not as nobody
            kernel.idmapped_bind(source, view, userns, readonly=True)
            return view
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EOPNOTSUPP):
                raise
            os.rmdir(view)
            return source  # this file system cannot be idmapped: a plain read-only bind

    # -- run -----------------------------------------------------------------------------
    def run(self, capture: bool, timeout: Optional[float]) -> Result:
        argv = [self.runtime, "run", "--bundle", self.dir, self.id]
        stdin_tty = sys.stdin is not None and sys.stdin.isatty()
        # Without a terminal in the way, the runtime gets its own process group so that a
        # terminal's ^C reaches it once, through us; with one, it must stay in the foreground.
        own_group = not (self.opts.tty or stdin_tty)
        forward = [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2]
        if own_group:
            forward += [signal.SIGINT, signal.SIGQUIT, signal.SIGHUP]
        proc = subprocess.Popen(
            argv, env=_runtime_env(),
            stdin=subprocess.DEVNULL if capture else None,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            start_new_session=False, preexec_fn=os.setpgrp if own_group else None)
        old = {s: signal.signal(s, lambda signum, _frame: proc.send_signal(signum)) for s in forward}
        if not own_group:  # the terminal signals the runtime itself; we must outlive the container
            old.update({s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGQUIT)})
        timed_out = False
        try:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                log(self.settings, "timed out after %s s: killing %s" % (timeout, self.id))
                _quiet([self.runtime, "kill", self.id, "KILL"])
                try:
                    out, err = proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
        code = TIMED_OUT if timed_out else proc.returncode
        if code < 0:  # the runtime itself died of a signal
            code = 128 - code
        return Result(code, out or b"", err or b"", timed_out)

    # -- detached ------------------------------------------------------------------------
    def log_path(self, stream: str) -> str:
        return os.path.join(self.dir, stream + ".log")

    def start_detached(self, timeout: float = 60) -> int:
        """`RUNTIME run --detach`: the container's stdout/stderr go to stdout.log/stderr.log
        (with the runtime's own messages); returns the pid of its init (from --pid-file, which
        outlives a program that exits at once; else from `RUNTIME state`).
        A caller that wants init's exit status makes itself a child subreaper first."""
        pid_file = os.path.join(self.dir, "init.pid")
        with open(self.log_path("stdout"), "wb") as out, open(self.log_path("stderr"), "wb") as err:
            try:
                proc = subprocess.run([self.runtime, "run", "--detach", "--pid-file", pid_file,
                                       "--bundle", self.dir, self.id],
                                      env=_runtime_env(), stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=err, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise SmithError("%s run --detach did not return within %s s" % (self.runtime, timeout))
        if proc.returncode != 0:
            raise SmithError("%s run --detach failed with exit code %d: %s" % (
                self.runtime, proc.returncode, self.read_log("stderr")[-2000:].decode("utf-8", "replace")))
        try:
            with open(pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pid = self.state().get("pid")
        if not isinstance(pid, int) or pid <= 0:
            raise SmithError("%s gave no pid of the container's init (--pid-file, state %s)"
                             % (self.runtime, self.id))
        return pid

    def state(self) -> Dict:
        proc = subprocess.run([self.runtime, "state", self.id], env=_runtime_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise SmithError("%s state %s failed: %s" % (self.runtime, self.id,
                                                        proc.stderr.decode("utf-8", "replace").strip()))
        try:
            found = json.loads(proc.stdout)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise SmithError("%s state %s did not print a JSON object" % (self.runtime, self.id))
        return found

    def kill(self, sig: str) -> None:
        """`RUNTIME kill ID SIG` (SIG a name such as TERM or a number)."""
        proc = subprocess.run([self.runtime, "kill", self.id, sig], env=_runtime_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise SmithError("%s kill %s %s failed: %s" % (self.runtime, self.id, sig,
                                                          proc.stderr.decode("utf-8", "replace").strip()))

    def read_log(self, stream: str, limit: int = 1 << 20) -> bytes:
        """The last `limit` bytes of a detached container's stdout or stderr (b"" if none)."""
        try:
            with open(self.log_path(stream), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read()
        except (OSError, ValueError):
            return b""

    def teardown(self, keep_write: bool) -> None:
        """Delete the runtime's container and its mounts; with keep_write the id range, the
        directory and its write/ stay for the next setup() (a restart on the same /write)."""
        if self.ids is None:
            return
        _quiet([self.runtime, "delete", "--force", self.id])
        if not keep_write:
            self.cleanup()
            return
        for point in kernel.mounts_under(self.dir):
            linux.umount(point, detach=True)
        if kernel.mounts_under(self.dir):
            raise SmithError("%s still has mounts after unmounting" % self.dir)
        for name in os.listdir(self.dir):
            if name == "write":
                continue
            path = os.path.join(self.dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    # -- cleanup -------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self.ids is None:
            return
        try:
            _quiet([self.runtime, "delete", "--force", self.id])  # in case it outlived `run`
            remove_container_dir(self.dir)
        finally:
            self.pool.free(self.ids)
            self.ids = None


def run(image: Image, opts: bundle.Options, settings: Settings, capture: bool,
        timeout: Optional[float], write_dir: Optional[str] = None) -> Result:
    """Run `image` once in a fresh container and clean up, whatever happens."""
    container = Container(image, opts, settings, write_dir)
    try:
        try:
            container.setup()
        finally:
            image.store.close()  # the layers are in the layer store now
        start = time.monotonic()
        result = container.run(capture, timeout)
        log(settings, "%s exited %d after %.2f s" % (container.id, result.exit_code,
                                                       time.monotonic() - start))
        return result
    finally:
        container.cleanup()
