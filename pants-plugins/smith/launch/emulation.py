"""Running an image of another architecture: natively when it is the host's, otherwise through
Debian's qemu-user-static registered with binfmt_misc with the F ("fix binary") flag. With F the
kernel opens the interpreter when it is registered, so it runs inside a container's mount
namespace and root, where /usr/bin/qemu-*-static does not exist.

`prepare(platform, mode)` returns None when the platform can run, else the reason it cannot; tests
report that reason as SKIP, never as PASS. In mode "install" the first foreign image installs
qemu-user-static (apt-get, under the lock the test tooling uses), mounts binfmt_misc if needed and
registers Debian's entry for the architecture (its magic, mask and flags, F added if missing).
A registration made by someone else is reused only if it has F; one without F is reported, never
replaced (it may belong to docker, binfmt-support or a user)."""
import errno
import fcntl
import os
import subprocess
import time
from typing import List, NamedTuple, Optional

from smith.registry.platforms import Platform, host_platform

MODES = ("install", "registered", "off")
BINFMT = "/proc/sys/fs/binfmt_misc"
CONF = "/usr/lib/binfmt.d/qemu-%s.conf"  # Debian's qemu-user-static ships one per architecture
PACKAGE = "qemu-user-static"
APT_LOCK = "/tmp/smith-apt.lock"  # the same lock as smith.testutil.debian: one apt at a time
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# All apt-get runs of one install together: well inside a test Process' setup allowance, so an
# unreachable mirror is a SKIP with its reason rather than a Process killed by Pants' timeout.
APT_SECONDS = 240
# OCI architecture -> qemu's name for it (the suffix of qemu-*-static and of Debian's entries).
QEMU_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386",
             "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
             "mips64le": "mips64el", "loong64": "loongarch64"}


class Registration(NamedTuple):
    name: str
    enabled: bool
    interpreter: str
    flags: str


def native(platform: Optional[Platform]) -> bool:
    """An image that names no platform is taken as the host's."""
    return platform is None or (platform.os, platform.architecture) == (
        "linux", host_platform().architecture)


def registrations(binfmt: str = BINFMT) -> List[Registration]:
    """binfmt_misc's entries (its files other than `register` and `status`)."""
    found = []
    for name in sorted(os.listdir(binfmt)):
        if name in ("register", "status"):
            continue
        try:
            with open(os.path.join(binfmt, name)) as f:
                lines = f.read(8192).splitlines()
        except OSError:
            continue
        fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
        found.append(Registration(name, lines[:1] == ["enabled"], fields.get("interpreter", ""),
                                  fields.get("flags:", "")))
    return found


def _registered(qarch: str, binfmt: str) -> Optional[Registration]:
    """An entry for this architecture: Debian, binfmt-support and the docker images all name it
    qemu-ARCH; an entry running a qemu-ARCH interpreter under another name counts too."""
    for r in registrations(binfmt):
        tail = os.path.basename(r.interpreter)
        if r.name == "qemu-" + qarch or tail in ("qemu-" + qarch, "qemu-%s-static" % qarch,
                                                 "%s-binfmt-P" % qarch):
            return r
    return None


def _install(qarch: str, log: List[str]) -> Optional[str]:
    """apt-get install qemu-user-static once per machine; the reason on failure."""
    env = {"PATH": PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    deadline = time.monotonic() + APT_SECONDS
    with open(APT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for argv in (["apt-get", "install", "-y", "-qq", "--no-install-recommends", PACKAGE],
                     ["apt-get", "update", "-qq"],
                     ["apt-get", "install", "-y", "-qq", "--no-install-recommends", PACKAGE]):
            if argv[1] == "install" and _installed(qarch):
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return "apt-get did not install %s within %d s" % (PACKAGE, APT_SECONDS)
            try:
                proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=left)
            except (OSError, subprocess.TimeoutExpired) as e:
                return "cannot run %s (%s)" % (" ".join(argv[:2]), e)
            log.append(proc.stdout.decode("utf-8", "replace")[-600:])
    if _installed(qarch):
        return None
    return "apt-get could not install %s: %s" % (PACKAGE, " | ".join(log)[-600:].strip())


def _installed(qarch: str) -> bool:
    return os.path.exists(CONF % qarch)


def _mount(binfmt: str) -> Optional[str]:
    if os.path.exists(os.path.join(binfmt, "register")):
        return None
    from smith import linux
    try:
        linux.mount("binfmt_misc", binfmt, "binfmt_misc")
    except OSError as e:
        return "binfmt_misc is not mounted at %s and mounting it failed (%s)" % (binfmt, e)
    return None


def _entry(qarch: str) -> Optional[str]:
    """Debian's registration line for the architecture, with the F flag."""
    try:
        with open(CONF % qarch) as f:
            line = f.read(4096).strip()
    except OSError:
        return None
    parts = line.split(":")
    if len(parts) != 8 or not parts[6]:
        return None
    if "F" not in parts[7]:
        parts[7] += "F"
    return ":".join(parts)


def prepare(platform: Optional[Platform], mode: str = "install", binfmt: str = BINFMT) -> Optional[str]:
    """None if images of `platform` can run here, else why not (in words, for a SKIP line)."""
    if native(platform):
        return None
    assert platform is not None
    if mode == "off":
        return "emulation of foreign platforms is off (--emulation off)"
    qarch = QEMU_ARCH.get(platform.architecture)
    if platform.os != "linux" or qarch is None:
        return "no qemu-user emulator runs %s images" % (platform,)
    if os.geteuid() != 0:
        return "registering qemu-%s with binfmt_misc needs root" % qarch
    if mode == "install":
        reason = _mount(binfmt)
        if reason:
            return reason
    if not os.path.exists(os.path.join(binfmt, "register")):
        return "binfmt_misc is not mounted at %s" % binfmt
    with open(os.path.join(binfmt, "status")) as f:
        if f.read(64).strip() != "enabled":
            return "binfmt_misc is disabled on this machine (%s/status)" % binfmt
    found = _registered(qarch, binfmt)
    if found is not None:
        return _usable(found)
    if mode != "install":
        return "no qemu-%s is registered with binfmt_misc (--emulation registered)" % qarch
    log: List[str] = []
    reason = _install(qarch, log)
    if reason:
        return reason
    entry = _entry(qarch)
    if entry is None:
        return "%s does not provide a binfmt entry for %s (%s)" % (PACKAGE, qarch, CONF % qarch)
    try:
        with open(os.path.join(binfmt, "register"), "w") as f:
            f.write(entry)
    except OSError as e:
        if e.errno == errno.EEXIST:  # registered meanwhile by a concurrent test
            found = _registered(qarch, binfmt)
            return _usable(found) if found else "cannot register qemu-%s (%s)" % (qarch, e)
        return "cannot register qemu-%s with binfmt_misc (%s)" % (qarch, e)
    found = _registered(qarch, binfmt)
    return _usable(found) if found else "qemu-%s did not appear in %s" % (qarch, binfmt)


def _usable(r: Registration) -> Optional[str]:
    if not r.enabled:
        return ("the binfmt_misc entry %s (%s) is disabled; enable it (echo 1 > %s/%s) or remove "
                "it; smith does not change a registration it did not make"
                % (r.name, r.interpreter, BINFMT, r.name))
    if "F" not in r.flags:
        return ("the binfmt_misc entry %s runs %s without the F flag (flags: %s), so the "
                "interpreter is not found inside a container; register it again with F (e.g. "
                "echo -1 > %s/%s and let smith register Debian's) or remove it; smith does not "
                "replace a registration it did not make" % (r.name, r.interpreter, r.flags or "none",
                                                           BINFMT, r.name))
    return None


def description(platform: Optional[Platform]) -> str:
    """How the platform runs, for the output: natively or under which emulator."""
    if native(platform):
        return "native"
    assert platform is not None
    return "qemu-%s" % QEMU_ARCH.get(platform.architecture, platform.architecture)
