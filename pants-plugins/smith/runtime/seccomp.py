"""linux.seccomp through libseccomp (loaded with ctypes): build the filter, then load it.

The rules follow runc 1.1 (libcontainer/seccomp/seccomp_linux.go), the reference where the
runtime-spec is silent:
- a rule whose action equals the default action is skipped (libseccomp refuses it);
- a syscall name libseccomp cannot resolve on this machine's native arch is skipped;
- a rule with several conditions on the same argument index is added as one rule per
  condition (so the conditions are OR-ed: `personality` allowed for each listed value),
  otherwise as one rule with all its conditions (AND-ed);
- SCMP_ACT_ERRNO and SCMP_ACT_TRACE return EPERM unless errnoRet/defaultErrnoRet says otherwise.
spec.check() validates the names and types first, so the errors here are libseccomp's.
"""
import struct

from smith.errors import SmithError
from smith.runtime import libc
from smith.runtime import posixos as os  # os's functions without importing os (see posixos.py)

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
# runc 1.1's architectures (and riscv64): the libseccomp name is the lower-case suffix.
ARCHES = {"SCMP_ARCH_" + a.upper(): a for a in (
    "x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel", "mipsel64",
    "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "riscv64")}
# linux.seccomp.flags -> the libseccomp filter attribute that sets it (None: nothing to do,
# init is single-threaded when it loads the filter, as runc says of TSYNC).
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": None, "SECCOMP_FILTER_FLAG_LOG": 6,  # SCMP_FLTATR_CTL_LOG
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7}  # SCMP_FLTATR_CTL_SSB
# Known to the runtime-spec or the kernel but not supported here, with the reason.
UNSUPPORTED_FLAGS = {
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": "it only applies to SCMP_ACT_NOTIFY, which this runtime does not support",
    "SECCOMP_FILTER_FLAG_NEW_LISTENER": "it only applies to SCMP_ACT_NOTIFY, which this runtime does not support",
    "SECCOMP_FILTER_FLAG_TSYNC_ESRCH": "it only applies to SCMP_ACT_NOTIFY, which this runtime does not support",
}
MAX_ERRNO = 4095
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_OPTIMIZE = 8
_lib = None


def _libseccomp():
    """dlopen libseccomp by the soname of its ABI 2 (what ctypes.util.find_library answers
    here too, after importing ctypes and running ldconfig: 60M instructions, more than the
    rest of a `run`). Called by the runtime before it forks the container's processes: they
    may not see the host's files any more."""
    global _lib
    if _lib is None:
        try:
            lib = libc.open_library("libseccomp.so.2")
        except OSError as e:
            raise SmithError("linux.seccomp is set but libseccomp cannot be loaded (%s); install "
                             "it (apt-get install libseccomp2)" % e) from None
        _lib = {n: libc.function(n, lib, returns_pointer=(n == "seccomp_init"))
                for n in ("seccomp_init", "seccomp_rule_add_array", "seccomp_load", "seccomp_release",
                          "seccomp_syscall_resolve_name", "seccomp_arch_add", "seccomp_attr_set",
                          "seccomp_arch_resolve_name", "seccomp_syscall_resolve_name_arch",
                          "seccomp_export_bpf")}
    return _lib


def action(name: str, errno_ret) -> int:
    """The libseccomp action value; ERRNO and TRACE carry errno_ret (default EPERM) in their low
    16 bits, truncated as runc does (int16)."""
    value = ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= (errno_ret if errno_ret is not None else 1) & 0xFFFF
    return value


def conditions(args: list) -> list:
    """The rules to add for one syscall, each a list of (index, op, value, valueTwo): runc adds
    one rule per condition when two of them test the same argument, else one rule with all."""
    if not args:
        return [[]]
    conds = [(a["index"], OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0)) for a in args]
    indexes = [c[0] for c in conds]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


def build(cfg: dict, cache_root: str = None):
    """A libseccomp filter context for the (spec-checked) config, or the whole program ready to
    load; errors name the field. With cache_root (the runtime's state directory) a program
    compiled before for the same profile is taken from there (see bpfcache.py)."""
    lib = _libseccomp()
    cache_key = _cache_key(cfg) if cache_root and cfg["defaultAction"] not in ALLOW_LIKE else None
    if cache_key:
        from smith.runtime import bpfcache
        code = bpfcache.load(cache_root, cache_key)
        if code is not None:
            return _Program(code, cfg.get("flags") or (), lib)
    default = action(cfg["defaultAction"], cfg.get("defaultErrnoRet"))
    ctx = lib["seccomp_init"](libc.c_ulong(default))
    if not ctx:
        raise SmithError("linux.seccomp.defaultAction: libseccomp refused %s%s" % (
            cfg["defaultAction"], " with defaultErrnoRet %s" % cfg["defaultErrnoRet"]
            if "defaultErrnoRet" in cfg else ""))
    ctx = libc.c_void_p(ctx)
    try:
        _fill(lib, ctx, cfg, default)
        stub = b"" if cfg["defaultAction"] in ALLOW_LIKE else enosys_stub(lib, cfg)
    except BaseException:
        lib["seccomp_release"](ctx)
        raise
    if not stub:
        return ctx
    program = _Program(stub + _export(lib, ctx), cfg.get("flags") or (), lib)
    if cache_key:
        from smith.runtime import bpfcache
        bpfcache.store(cache_root, cache_key, program.code)
    return program


def _cache_key(cfg: dict):
    """What the compiled program depends on besides the code of this module (bpfcache.FORMAT):
    the profile, the libseccomp file this process loaded, the kernel. None if that file
    cannot be named (then nothing is cached)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            path = next((line.split(None, 5)[5].strip() for line in f
                         if b"/libseccomp.so" in line and len(line.split(None, 5)) == 6), None)
        st = os.stat(path) if path else None
    except OSError:  # no /proc; or "... (deleted)": the package was upgraded under this process
        return None
    if st is None:
        return None
    from smith.runtime import bpfcache, fastjson
    uname = os.uname()
    lib = b"%s %d %d %d %d" % (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return bpfcache.key(fastjson.dumps(cfg).encode(), lib, uname.release.encode(), uname.machine.encode())


def _export(lib: dict, ctx) -> bytes:
    """libseccomp's BPF program for ctx (sock_filter structs in host byte order); releases ctx."""
    fd = os.memfd_create("smith-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib["seccomp_export_bpf"](ctx, fd)
        if rc < 0:
            raise SmithError("linux.seccomp: exporting the filter failed: %s" % os.strerror(-rc))
        return os.pread(fd, os.lseek(fd, 0, os.SEEK_END), 0)
    finally:
        os.close(fd)
        lib["seccomp_release"](ctx)


def _fill(lib: dict, ctx, cfg: dict, default: int) -> None:
    lib["seccomp_attr_set"](ctx, SCMP_FLTATR_CTL_NNP, 0)  # we set no_new_privs ourselves
    for i, arch in enumerate(cfg.get("architectures") or ()):
        token = lib["seccomp_arch_resolve_name"](ARCHES[arch].encode())
        rc = lib["seccomp_arch_add"](ctx, libc.c_ulong(token & 0xFFFFFFFF)) if token else -22
        if rc < 0 and rc != -17:  # -EEXIST: the native arch is already there
            why = "libseccomp does not know it" if not token else (
                "it cannot be mixed with this machine's architecture" if rc == -33 else os.strerror(-rc))
            raise SmithError("linux.seccomp.architectures[%d]: cannot add %s: %s" % (i, arch, why))
    for i, flag in enumerate(cfg.get("flags") or ()):
        attr = FLAGS[flag]
        if attr is not None:
            rc = lib["seccomp_attr_set"](ctx, attr, 1)
            if rc < 0:
                raise SmithError("linux.seccomp.flags[%d]: %s is not supported by this kernel or "
                                 "libseccomp: %s" % (i, flag, os.strerror(-rc)))
    rules = cfg.get("syscalls") or ()
    if sum(len(r["names"]) for r in rules) > 32:  # like runc: a binary tree for long rule sets
        lib["seccomp_attr_set"](ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
    for i, rule in enumerate(rules):
        field = "linux.seccomp.syscalls[%d]" % i
        act = action(rule["action"], rule.get("errnoRet"))
        if act == default:
            continue  # libseccomp refuses rules that repeat the default action; runc skips them
        groups = [struct.pack("IIQQ" * len(c), *[x for cond in c for x in cond]) for c in conditions(rule.get("args"))]
        for name in rule["names"]:
            nr = lib["seccomp_syscall_resolve_name"](name.encode())
            if nr == -1:  # __NR_SCMP_ERROR (other negative numbers are valid pseudo-syscalls)
                continue  # like runc: a syscall this kernel/arch does not know is skipped
            for packed in groups:
                rc = lib["seccomp_rule_add_array"](ctx, libc.c_ulong(act), nr, len(packed) // 24, packed or None)
                if rc < 0 and rc != -17:
                    raise SmithError("%s: cannot add the rule for %s: libseccomp says %s"
                                     % (field, name, os.strerror(-rc)))


# runc's -ENOSYS stub (libcontainer/seccomp/patchbpf): with a deny-by-default profile, a syscall
# newer than every syscall the profile names gets ENOSYS, not the default action, so libc falls
# back to the older call (clone3 -> clone, faccessat2 -> faccessat). Not added when the default
# action lets syscalls through, nor for arches the profile does not list (as runc).
ALLOW_LIKE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
_LD_W_ABS, _JEQ, _JGT, _JSET, _JA, _RET = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
_RET_ENOSYS = 0x00050000 | 38  # SECCOMP_RET_ERRNO | ENOSYS
_FILTER_FLAGS = {"SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}


def _insn(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def last_syscalls(lib: dict, cfg: dict) -> dict:
    """{native AUDIT_ARCH: {arch name: largest syscall number the profile names on it}}."""
    found = {}
    names = [n for rule in cfg.get("syscalls") or () for n in rule["names"]]
    for arch in cfg.get("architectures") or ():
        token = lib["seccomp_arch_resolve_name"](ARCHES[arch].encode()) & 0xFFFFFFFF
        native = AUDIT_ARCH_X86_64 if arch == "SCMP_ARCH_X32" else token
        largest = max([lib["seccomp_syscall_resolve_name_arch"](libc.c_ulong(token), n.encode())
                       for n in names] or [0])
        if largest > 0:
            found.setdefault(native, {})[arch] = largest
    return found


def enosys_stub(lib: dict, cfg: dict) -> bytes:
    """The BPF instructions to put in front of libseccomp's program: per listed arch, a syscall
    number above the largest one the profile names returns ENOSYS; everything else goes on to
    the filter. None in a section stands for "jump to the filter", filled in at the end."""
    sections = []
    for native, largest in sorted(last_syscalls(lib, cfg).items()):
        code = [_insn(_LD_W_ABS, 0)]  # A = seccomp_data.nr
        if set(largest) & {"SCMP_ARCH_S390", "SCMP_ARCH_S390X"}:
            code += [_insn(_JEQ, 0, 0, 1), _insn(_RET, _RET_ENOSYS)]  # setup(2) multiplexes unknown calls
        if native == AUDIT_ARCH_X86_64:  # x86_64 and x32 share it; x32 numbers have bit 30 set
            x64, x32 = largest.get("SCMP_ARCH_X86_64"), largest.get("SCMP_ARCH_X32")
            check64 = [_insn(_JGT, x64, 0, 1), _insn(_RET, _RET_ENOSYS), None] if x64 else [None]
            check32 = [_insn(_JGT, x32, 0, 1), _insn(_RET, _RET_ENOSYS), None] if x32 else [None]
            code += [_insn(_JSET, X32_SYSCALL_BIT, len(check64), 0)] + check64 + check32
        else:
            code += [_insn(_JGT, next(iter(largest.values())), 0, 1), _insn(_RET, _RET_ENOSYS), None]
        sections.append((native, code))
    if not sections:
        return b""
    # ld arch; one jeq per arch to its section; ja filter (other arches); the sections
    head = 1 + len(sections) + 1
    total = head + sum(len(c) for _, c in sections)
    out = [_insn(_LD_W_ABS, 4)]
    start = head
    for i, (native, code) in enumerate(sections):
        out.append(_insn(_JEQ, native, start - (1 + i) - 1, 0))
        start += len(code)
    out.append(_insn(_JA, total - head))
    for _, code in sections:
        for insn in code:
            out.append(insn if insn is not None else _insn(_JA, total - len(out) - 1))
    return b"".join(out)


class _Program:
    """A whole BPF program (the ENOSYS stub + libseccomp's filter) for seccomp(2), made ready
    here so that loading it in the container is one call."""

    def __init__(self, code: bytes, flags, lib: dict):
        self.code = code
        self.buf = libc.buffer_of(code)  # kept: fprog holds its address
        self.fprog = struct.pack("HxxxxxxQ", len(code) // 8, libc.address_of(self.buf))
        self.flags = 0
        for f in flags:
            self.flags |= _FILTER_FLAGS.get(f, 0)
        self.nr = lib["seccomp_syscall_resolve_name"](b"seccomp")
        self.syscall = libc.function("syscall")


def load(ctx) -> None:
    if isinstance(ctx, _Program):
        import _ctypes
        if ctx.syscall(libc.c_ulong(ctx.nr), libc.c_ulong(1), libc.c_ulong(ctx.flags), ctx.fprog) < 0:
            raise SmithError("linux.seccomp: loading the filter failed: %s" % os.strerror(_ctypes.get_errno()))
        return
    rc = _libseccomp()["seccomp_load"](ctx)
    if rc < 0:
        raise SmithError("linux.seccomp: loading the filter failed: %s" % os.strerror(-rc))
