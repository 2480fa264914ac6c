"""The closure of every ELF program in this machine's /usr/bin and /usr/sbin, with --root /,
must load what the real `ld.so --list` loads (compared as real paths, vdso aside)."""
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Set, Tuple

from smith.elf.closure import compute_closure
from smith.elf.elfinfo import ElfCache
from smith.errors import SmithError
from smith.testutil.debian import require_tools, tool_env
from smith.testutil.ldso import host_platform

LD_SO = "/lib64/ld-linux-x86-64.so.2"

# Programs whose closure is expected to differ from ld.so's, with the reason. Only programs that
# exist on the machine are checked; every difference found must be listed here.
EXPECTED_DIFFERENCES: Dict[str, str] = {
}

# Kinds of difference that are expected whatever the program, with the reason.
HWCAPS_DIR = re.compile(r"/(?:glibc-hwcaps/[^/]+|tls|x86_64|haswell|avx512_1)(?=/)")
HWCAPS_REASON = ("ld.so took a glibc-hwcaps / legacy hwcap variant for this CPU; the closure ships the "
                 "baseline library, which ld.so falls back to on any CPU")


def _explain(path: str, theirs: Optional[Set[str]], mine: Optional[Set[str]]) -> Optional[str]:
    if os.path.basename(path) in EXPECTED_DIFFERENCES:
        return EXPECTED_DIFFERENCES[os.path.basename(path)]
    if theirs and mine is not None and {HWCAPS_DIR.sub("", p) for p in theirs} == mine:
        return HWCAPS_REASON
    return None


_LINE = re.compile(r"^\s*(?:(\S+) => )?(\S+|not found)(?: \(0x[0-9a-f]+\))?\s*$")


def _programs() -> List[str]:
    seen: Set[str] = set()
    out = []
    for d in ("/usr/bin", "/usr/sbin"):
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            real = os.path.realpath(path)
            if real in seen or not os.path.isfile(real):
                continue
            seen.add(real)
            with open(real, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(path)
    return out


def _ld_so_list(path: str) -> Optional[Set[str]]:
    """Real paths ld.so loads for `path`; None when ld.so calls it not dynamic (static)."""
    # Run on the real path: an exec'd program's $ORIGIN comes from /proc/self/exe (resolved), while
    # `ld.so --list LINK` would take it from the link's dir (e.g. /usr/bin/jar -> JDK's bin/jar).
    proc = subprocess.run([LD_SO, "--list", os.path.realpath(path)], env=tool_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if "not a dynamic executable" in proc.stdout or "statically linked" in proc.stdout:
        return None
    if proc.returncode < 0 and not proc.stdout.strip():
        # ld.so --list crashes on static non-PIE executables; ask binutils' readelf instead.
        headers = subprocess.run(["readelf", "-lW", path], env=tool_env(), stdout=subprocess.PIPE,
                                 check=True, text=True).stdout
        assert not re.search(r"^\s*(INTERP|DYNAMIC)\s", headers, re.M), \
            "ld.so --list crashed (%d) on the dynamic program %s" % (proc.returncode, path)
        return None
    loaded = set()
    for line in proc.stdout.splitlines():
        if "error while loading shared libraries" in line:
            loaded.add("ERROR: " + line.split(": ", 1)[1])
            continue
        m = _LINE.match(line)
        assert m, "unexpected ld.so --list line for %s: %r" % (path, line)
        name, target = m.group(1), m.group(2)
        if target == "not found":
            loaded.add("NOT FOUND: %s" % name)
        elif target.startswith("/"):
            loaded.add(os.path.realpath(target))
        # else: linux-vdso.so.1, provided by the kernel
    return loaded


def _same_missing_library(error: str, theirs: Optional[Set[str]]) -> bool:
    m = re.match(r"library (\S+) needed by", error)
    return bool(m and theirs and "NOT FOUND: %s" % m.group(1) in theirs)


def _mine(path: str, cache: ElfCache) -> Tuple[Optional[Set[str]], str]:
    try:
        result = compute_closure("/", [path], env={}, elf_cache=cache)
    except SmithError as e:
        return None, str(e)
    if not result.processes:
        return None, "static"
    here = host_platform()  # ld.so --list answers for this CPU's $PLATFORM only
    objs = [o for proc in result.processes if proc.platform == here for o in proc.objects[1:]]
    return {os.path.realpath(o.path) for o in objs}, ""


def test_closure_matches_ld_so_for_every_host_program() -> None:
    require_tools("readelf")
    programs = _programs()
    assert len(programs) > 100, "expected a Debian machine with many programs in /usr/bin"
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=4) as pool:
        theirs = dict(zip(programs, pool.map(_ld_so_list, programs)))
    t1 = time.time()
    cache = ElfCache()
    ours = {p: _mine(p, cache) for p in programs}
    t2 = time.time()
    equal, diffs = 0, {}
    for p in programs:
        mine, why = ours[p]
        if mine == theirs[p] or (mine is None and why == "static" and theirs[p] is None):
            equal += 1
        elif mine is None and _same_missing_library(why, theirs[p]):
            equal += 1  # both refuse the program for the same missing library
        else:
            diffs[p] = "ld.so: %s\n      smith: %s" % (sorted(theirs[p] or []), sorted(mine) if mine is not None else why)
    print("\n%d programs, %d equal, %d different (ld.so --list %.1fs, closure %.1fs)"
          % (len(programs), equal, len(diffs), t1 - t0, t2 - t1))
    reasons = {p: _explain(p, theirs[p], ours[p][0]) for p in diffs}
    for p, d in sorted(diffs.items()):
        print("  %s [%s]\n      %s" % (p, reasons[p] or "UNEXPLAINED", d))
    unexplained = sorted(p for p in diffs if reasons[p] is None)
    assert not unexplained, "closure differs from ld.so for %s" % unexplained
    assert equal >= 0.99 * len(programs)
