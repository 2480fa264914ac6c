"""linux.seccomp through libseccomp (loaded with ctypes): build the filter, then load it."""
import os
import struct

from smith.errors import SmithError
from smith.runtime import libc

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ARCHES = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X32": 0x4000003E,
          "SCMP_ARCH_AARCH64": 0xC00000B7, "SCMP_ARCH_ARM": 0x40000028}
SCMP_FLTATR_CTL_NNP = 3
_lib = None


def _libseccomp():
    """Find and dlopen libseccomp. Called by the runtime before it forks the container's
    processes: they may not see the host's files or be able to run ldconfig any more."""
    global _lib
    if _lib is None:
        import ctypes.util
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        try:
            lib = libc.open_library(name)
        except OSError as e:
            raise SmithError("linux.seccomp is set but libseccomp cannot be loaded (%s); install "
                             "it (apt-get install libseccomp2)" % e) from None
        _lib = {n: libc.function(n, lib, returns_pointer=(n == "seccomp_init"))
                for n in ("seccomp_init", "seccomp_rule_add_array", "seccomp_load", "seccomp_release",
                          "seccomp_syscall_resolve_name", "seccomp_arch_add", "seccomp_attr_set")}
    return _lib


def _action(name: str, errno_ret, field: str) -> int:
    if name == "SCMP_ACT_ERRNO":
        return 0x00050000 | ((errno_ret if errno_ret is not None else 1) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return 0x7FF00000 | ((errno_ret if errno_ret is not None else 1) & 0xFFFF)
    if name not in ACTIONS:
        raise SmithError("%s: unknown seccomp action %r (known: SCMP_ACT_ERRNO, SCMP_ACT_TRACE, %s)"
                         % (field, name, ", ".join(sorted(ACTIONS))))
    return ACTIONS[name]


def prepare() -> None:
    _libseccomp()


def build(cfg: dict):
    """A libseccomp filter context for the config; every bad name is an error naming the field."""
    lib = _libseccomp()
    default = _action(cfg["defaultAction"], cfg.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    ctx = lib["seccomp_init"](libc.c_ulong(default))
    if not ctx:
        raise SmithError("linux.seccomp: seccomp_init failed for defaultAction %s" % cfg["defaultAction"])
    ctx = libc.c_void_p(ctx)
    lib["seccomp_attr_set"](ctx, SCMP_FLTATR_CTL_NNP, 0)  # we set no_new_privs ourselves
    for i, arch in enumerate(cfg.get("architectures") or ()):
        if arch not in ARCHES:
            raise SmithError("linux.seccomp.architectures[%d]: unknown architecture %r" % (i, arch))
        rc = lib["seccomp_arch_add"](ctx, libc.c_ulong(ARCHES[arch]))
        if rc < 0 and rc != -17:  # -EEXIST: the native arch is already there
            raise SmithError("linux.seccomp.architectures[%d]: %s: %s" % (i, arch, os.strerror(-rc)))
    for i, rule in enumerate(cfg.get("syscalls") or ()):
        field = "linux.seccomp.syscalls[%d]" % i
        action = _action(rule["action"], rule.get("errnoRet"), field + ".action")
        args = b""
        for j, a in enumerate(rule.get("args") or ()):
            if a.get("op") not in OPS:
                raise SmithError("%s.args[%d].op: unknown operator %r" % (field, j, a.get("op")))
            args += struct.pack("IIQQ", a["index"], OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
        count = len(rule.get("args") or ())
        if action == default:
            continue  # libseccomp refuses rules that repeat the default action; runc skips them
        for name in rule["names"]:
            nr = lib["seccomp_syscall_resolve_name"](name.encode())
            if nr == -1:  # __NR_SCMP_ERROR (other negative numbers are valid pseudo-syscalls)
                continue  # like runc: a syscall this kernel/arch does not know is skipped
            rc = lib["seccomp_rule_add_array"](ctx, libc.c_ulong(action), nr, count, args or None)
            if rc < 0 and rc != -17:
                raise SmithError("%s: cannot add rule for %s: %s" % (field, name, os.strerror(-rc)))
    return ctx


def load(ctx) -> None:
    rc = _libseccomp()["seccomp_load"](ctx)
    if rc < 0:
        raise SmithError("linux.seccomp: loading the filter failed: %s" % os.strerror(-rc))
