"""Where ld.so looks: default dirs, /etc/ld.so.conf, and dynamic string tokens ($ORIGIN...).

Choices (checked against this Debian bookworm machine's `ld.so --help` and LD_DEBUG=libs):
- A root with a multiarch dir (/lib/<triplet> or /usr/lib/<triplet>) is a Debian-style root: its
  ld.so searches /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib, and expands `$LIB` to
  "lib/<triplet>" (Debian builds glibc with slibdir=/lib/<triplet>). Any other root is taken as an
  upstream/Fedora-style glibc: /lib64, /usr/lib64 for 64-bit objects (/lib, /usr/lib for 32-bit)
  and `$LIB` = "lib64" (or "lib").
- `$PLATFORM` is the AT_PLATFORM string of the machine (x86_64, aarch64, i686).
- glibc-hwcaps / legacy hwcap subdirectories are not searched: ld.so falls back to the plain dir,
  so the baseline library always works in the image.
"""
import os
import re
from typing import Dict, List, NamedTuple, Optional, Set

from smith.elf.rootfs import RootFS, glob_in_root


class Arch(NamedTuple):
    triplet: str
    platform: str


ARCHES: Dict[str, Arch] = {
    "EM_X86_64": Arch("x86_64-linux-gnu", "x86_64"),
    "EM_AARCH64": Arch("aarch64-linux-gnu", "aarch64"),
    "EM_386": Arch("i386-linux-gnu", "i686"),
    "EM_S390": Arch("s390x-linux-gnu", "s390x"),
    "EM_RISCV": Arch("riscv64-linux-gnu", "riscv64"),
}

_DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


class SearchConfig:
    """The loader's fixed search list for one root and one kind of ELF object."""

    def __init__(self, fs: RootFS, machine: str, elfclass: str) -> None:
        self.fs = fs
        arch = ARCHES.get(machine)
        self.platform = arch.platform if arch else None
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

