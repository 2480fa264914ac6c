"""Where ld.so looks: default dirs, /etc/ld.so.conf, and dynamic string tokens ($ORIGIN...).

Choices (checked against this Debian bookworm machine's `ld.so --help` and LD_DEBUG=libs):
- A root with a multiarch dir (/lib/<triplet> or /usr/lib/<triplet>) is a Debian-style root: its
  ld.so searches /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib, and expands `$LIB` to
  "lib/<triplet>" (Debian builds glibc with slibdir=/lib/<triplet>). Any other root is taken as an
  upstream/Fedora-style glibc: /lib64, /usr/lib64 for 64-bit objects (/lib, /usr/lib for 32-bit)
  and `$LIB` = "lib64" (or "lib").
- `$PLATFORM` is the AT_PLATFORM string the kernel and glibc give the process, which depends on
  the CPU the image will run on, not on the build machine: on x86-64, glibc 2.26+ reports
  `haswell` or `xeon_phi` on CPUs that qualify and `x86_64` otherwise (see "Legacy HWCAP
  subdirectories" in `ld.so --help`). A closure is computed once per value the architecture
  allows (`Arch.platforms`) and the union kept, so the image runs on every CPU of its architecture.
- glibc-hwcaps (`DIR/glibc-hwcaps/x86-64-v3/`) and legacy hwcap subdirectories (`DIR/haswell/`,
  `DIR/tls/`, ...) are searched before DIR itself on CPUs that support them. A variant found there
  is kept beside the baseline file (`variant_subdirs`); the baseline alone decides whether a name
  is found, since every CPU falls back to it.
"""
import os
import re
from itertools import permutations
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

from smith.elf.rootfs import RootFS, glob_in_root


class Arch(NamedTuple):
    triplet: str
    platforms: Tuple[str, ...]  # every AT_PLATFORM ld.so may expand $PLATFORM to, baseline first
    hwcaps: Tuple[str, ...]  # glibc-hwcaps subdirectories, in ld.so's order (best first)
    legacy: Tuple[str, ...] = ("tls",)  # legacy hwcap names besides the platform (glibc < 2.37)


# From glibc 2.36 (Debian bookworm): sysdeps/x86/dl-procinfo + dl-hwcaps-subdirs.c per arch.
ARCHES: Dict[str, Arch] = {
    "EM_X86_64": Arch("x86_64-linux-gnu", ("x86_64", "haswell", "xeon_phi"),
                      ("x86-64-v4", "x86-64-v3", "x86-64-v2"), ("tls", "avx512_1")),
    "EM_AARCH64": Arch("aarch64-linux-gnu", ("aarch64",), ()),
    "EM_386": Arch("i386-linux-gnu", ("i686", "i386", "i486", "i586"), ()),
    "EM_PPC64": Arch("powerpc64le-linux-gnu", ("power8", "power9", "power10"), ("power10", "power9")),
    "EM_S390": Arch("s390x-linux-gnu", ("z900", "z990", "z9-109", "z10", "z196", "zEC12", "z13", "z14",
                                        "z15", "z16"), ("z16", "z15", "z14", "z13")),
    "EM_RISCV": Arch("riscv64-linux-gnu", ("riscv64",), ()),
}


def platforms_of(machine: str) -> Tuple[Optional[str], ...]:
    """The $PLATFORM values of an ELF machine (None: unknown machine, $PLATFORM has no value)."""
    arch = ARCHES.get(machine)
    return arch.platforms if arch else (None,)

_DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


class SearchConfig:
    """The loader's fixed search list for one root and one kind of ELF object."""

    def __init__(self, fs: RootFS, machine: str, elfclass: str, platform: Optional[str] = None) -> None:
        self.fs = fs
        arch = ARCHES.get(machine)
        self.platform = platform if platform is not None else (arch.platforms[0] if arch else None)
        self.variant_subdirs = _variant_subdirs(arch, self.platform)
        multiarch = arch is not None and any(
            (r is not None and r.is_dir) for r in
            (fs.resolve("/lib/" + arch.triplet), fs.resolve("/usr/lib/" + arch.triplet)))
        if multiarch:
            self.lib = "lib/" + arch.triplet
            self.default_dirs = ["/lib/" + arch.triplet, "/usr/lib/" + arch.triplet, "/lib", "/usr/lib"]
        elif elfclass == "ELFCLASS64":
            self.lib = "lib64"
            self.default_dirs = ["/lib64", "/usr/lib64"]
        else:
            self.lib = "lib"
            self.default_dirs = ["/lib", "/usr/lib"]
        self.conf_dirs = read_ld_so_conf(fs)

    def expand(self, entry: str, origin: str) -> Optional[str]:
        """Expand $ORIGIN/$LIB/$PLATFORM; None when a token has no value (ld.so drops the entry)."""
        missing = []

        def repl(m: "re.Match") -> str:
            name = m.group(1) or m.group(2)
            value = {"ORIGIN": origin, "LIB": self.lib, "PLATFORM": self.platform}[name]
            if value is None:
                missing.append(name)
                return ""
            return value

        out = _DST.sub(repl, entry)
        if missing:
            return None
        # A relative entry is relative to the process' cwd, which is / in a container.
        return out if out.startswith("/") else "/" + out


def _variant_subdirs(arch: Optional[Arch], platform: Optional[str]) -> List[str]:
    """Subdirectories of a search dir ld.so may take a library from on some CPU with this
    $PLATFORM: glibc-hwcaps first, then the legacy ones. glibc builds the legacy list from
    ordered combinations of tls, the hwcap names and the platform; every order of up to three
    is listed here, a superset (a subdir that ld.so never uses simply holds nothing)."""
    if arch is None:
        return []
    subdirs = ["glibc-hwcaps/" + h for h in arch.hwcaps]
    names = list(arch.legacy) + ([platform] if platform else [])
    for n in range(1, min(3, len(names)) + 1):
        subdirs += ["/".join(p) for p in permutations(names, n)]
    return subdirs


def read_ld_so_conf(fs: RootFS) -> List[str]:
    """Directories listed by the root's /etc/ld.so.conf (with `include` globs), in order, deduplicated."""
    dirs: List[str] = []
    seen: Set[str] = set()
    _parse_conf(fs, "/etc/ld.so.conf", dirs, seen, depth=0)
    return dirs


def _parse_conf(fs: RootFS, path: str, dirs: List[str], seen: Set[str], depth: int) -> None:
    found = fs.resolve(path)
    if found is None or not found.is_file or depth > 16 or found.path in seen:
        return
    seen.add(found.path)
    with open(fs.host(found.path), "r", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "include" and len(words) > 1:
            for pattern in words[1:]:
                if not pattern.startswith("/"):  # ldconfig: relative to the including file's dir
                    pattern = os.path.join(os.path.dirname(path), pattern)
                for conf in glob_in_root(fs, pattern):
                    _parse_conf(fs, conf, dirs, seen, depth + 1)
        elif words[0] == "hwcap":
            continue
        else:
            d = line.split("=", 1)[0].rstrip("/") or "/"  # old "dir=TYPE" syntax
            if d.startswith("/") and d not in dirs:
                dirs.append(d)

