"""The files an image must hold for some programs to run: the ELF closure inside a root.

`compute_closure` is the library entry point used by the `smith closure` CLI.
"""
import os
import sys
from typing import Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from smith.elf.elfinfo import DEFAULT_CACHE, ElfCache, ElfInfo
from smith.elf.loader import Process
from smith.elf.rootfs import Resolved, RootFS, glob_in_root, kept_paths
from smith.elf.searchpath import SearchConfig, platforms_of
from smith.errors import SmithError, for_terminal
from smith import platforms as platforms

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_SCRIPT_DEPTH = 4  # the kernel's BINPRM_MAX_RECURSION
NSS_MODULES = ("libnss_files.so.2", "libnss_dns.so.2")


class ClosureResult(NamedTuple):
    paths: List[str]  # sorted entries (files and symlinks) inside the root
    processes: List[Process]  # per ELF executable that runs (scripts run their interpreter), one per $PLATFORM
    warnings: List[str]


class Closure:
    def __init__(self, root: str, env: Optional[Dict[str, str]] = None,
                 elf_cache: Optional[ElfCache] = None, platform: Optional[str] = None) -> None:
        self.fs = RootFS(root)
        # One image runs on one machine: every ELF file traced must be of one class and machine,
        # the platform's when one is given, else the first program's.
        self.kind: Optional[Tuple[str, str]] = None
        self.kind_from = ""
        if platform is not None:
            p = platforms.get(platform, "--platform")
            self.kind, self.kind_from = (p.elfclass, p.machine), "the image's platform %s" % p.name
        self.env = dict(env or {})
        self.elf_cache = elf_cache or DEFAULT_CACHE
        self.configs: Dict[Tuple[str, str, Optional[str]], SearchConfig] = {}
        self.paths: Set[str] = set()
        self.processes: List[Process] = []
        self.warnings: List[str] = []

    # -- bookkeeping ------------------------------------------------------------------------
    def keep(self, found: Resolved) -> None:
        self.paths.update(found.links)
        self.paths.add(found.path)

    def _find_program(self, path: str, why: str) -> Resolved:
        if "/" not in path:
            return self._which(path, why)
        found = self.fs.resolve(path)
        if found is None:
            raise SmithError("%s %s does not exist in the root %s" % (why, path, self.fs.root))
        if not found.is_file:
            raise SmithError("%s %s is not a regular file in the root %s" % (why, path, self.fs.root))
        return found

    def _which(self, name: str, why: str) -> Resolved:
        search = self.env.get("PATH", DEFAULT_PATH)
        for d in search.split(":"):
            if not d:
                continue
            found = self.fs.resolve(d.rstrip("/") + "/" + name)
            if found is not None and found.is_file and found.st.st_mode & 0o111:
                self.keep(found)
                return found
        raise SmithError("%s %s was not found on PATH=%s in the root %s; give its absolute path or set "
                         "PATH with --env" % (why, name, search, self.fs.root))

    def _check_kind(self, path: str, info: ElfInfo) -> None:
        got = (info.elfclass, info.machine)
        if self.kind is None:
            self.kind, self.kind_from = got, path
        elif got != self.kind:
            raise SmithError("%s is %s (%s) but %s is %s (%s): one image holds ELF files of one machine; "
                             "use the package or file built for %s"
                             % (path, got[1], got[0], self.kind_from, self.kind[1], self.kind[0], self.kind[1]))

    # -- programs ---------------------------------------------------------------------------
    def add_program(self, path: str, depth: int = 0, why: str = "program") -> None:
        found = self._find_program(path, why)
        self.keep(found)
        host = self.fs.host(found.path)
        with open(host, "rb") as f:
            head = f.read(256)  # the kernel reads at most this much of a #! line
        if head.startswith(b"#!"):
            self._add_script(path, head, depth)
            return
        info = self.elf_cache.get(host, found.st, path)
        if info is None:
            raise SmithError("%s %s is neither an ELF executable nor a #! script" % (why, path))
        self._check_kind(path, info)
        if not info.dynamic or (info.interp is None and not info.needed):
            return  # static or static-pie: needs only itself
        preloads = self._preloads()
        for proc in self._processes(path, found, info):
            for name in proc.load_all(preloads):
                self._warn("preload %s is not in the root %s; ld.so will ignore it" % (name, self.fs.root))
            self._keep_process(proc)
            self.processes.append(proc)

    def _processes(self, path: str, found: Resolved, info: ElfInfo) -> List[Process]:
        """One process per $PLATFORM the program's architecture allows: the image runs on CPUs
        the build cannot know, so it holds what ld.so loads on each of them."""
        return [Process(self.fs, self.elf_cache, self.env, path, found, info, self.configs, platform)
                for platform in platforms_of(info.machine)]

    def _preloads(self) -> List[str]:
        """LD_PRELOAD (image env) then the root's /etc/ld.so.preload, split as ld.so splits them."""
        names = self.env.get("LD_PRELOAD", "").replace(":", " ").split()
        found = self.fs.resolve("/etc/ld.so.preload")
        if found is not None and found.is_file:
            with open(self.fs.host(found.path), "r", encoding="utf-8", errors="replace") as f:
                listed = f.read().replace(":", " ").split()
            if listed:
                self.keep(found)  # the image's ld.so reads it too
                names += listed
        return names

    def _warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    def _keep_process(self, proc: Process) -> None:
        for obj in proc.objects:
            self._check_kind(obj.path, obj.info)  # ld.so skips other machines' libraries, not its own kind
            self.keep(obj.found)
            if obj.via_conf:
                self._need_ld_so_cache(obj.path)

    def _need_ld_so_cache(self, lib: str) -> None:
        cache = self.fs.resolve("/etc/ld.so.cache")
        if cache is not None and cache.is_file:
            self.keep(cache)
        else:
            self._warn("%s was found through /etc/ld.so.conf, but the root has no /etc/ld.so.cache, so ld.so "
                       "in the image will not find it; run `ldconfig -r ROOT` or add its dir to LD_LIBRARY_PATH"
                       % lib)

    def _add_script(self, path: str, head: bytes, depth: int) -> None:
        if depth >= MAX_SCRIPT_DEPTH:
            raise SmithError("script %s: too many levels of #! interpreters" % path)
        line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        if not line:
            raise SmithError("script %s has an empty #! line; name its interpreter" % path)
        parts = line.split(None, 1)
        interp, arg = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        # The kernel opens a relative interpreter from the cwd (/ in a container), not from PATH.
        self.add_program(interp if "/" in interp else "/" + interp, depth + 1, "interpreter of %s:" % path)
        if os.path.basename(interp) == "env" and arg:
            command = self._env_command(arg)
            if command is None:
                raise SmithError("script %s: `#!%s` gives env no command (the kernel passes '%s' as one "
                                 "argument); use `#!/usr/bin/env -S ...` to pass several" % (path, line, arg))
            self.add_program(command, depth + 1, "command run by `env` in %s:" % path)

    @staticmethod
    def _env_command(arg: str) -> Optional[str]:
        """The command `env` runs. The kernel passes everything after the interpreter as ONE
        argument, so only `env -S` (split-string) sees options, assignments and a command in it."""
        if arg.startswith("-S") or arg.startswith("--split-string"):
            words = arg.split()
            words[0] = words[0][2:] if words[0].startswith("-S") else ""
            words = [w for w in words if w]
        else:
            words = [arg]
        i = 0
        while i < len(words) and words[i].startswith("-"):  # options come first...
            i += 2 if words[i] in ("-u", "--unset", "-C", "--chdir") else 1
        while i < len(words) and "=" in words[i]:  # ...then NAME=VALUE assignments
            i += 1
        return words[i] if i < len(words) else None

    # -- dlopened objects ---------------------------------------------------------------------
    def add_extra_libs(self, pattern: str) -> None:
        if not pattern.startswith("/"):
            raise SmithError("--extra-lib %s must be an absolute glob inside the root" % pattern)
        matches = glob_in_root(self.fs, pattern)
        if not matches:
            raise SmithError("--extra-lib %s matched nothing in the root %s" % (pattern, self.fs.root))
        for path in matches:
            found = self.fs.resolve(path)
            if found is None or found.is_dir:
                continue
            self.keep(found)
            if not found.is_file:
                continue
            info = self.elf_cache.get(self.fs.host(found.path), found.st, path)
            if info is None:
                continue  # a data file the program reads: kept as it is
            self._check_kind(path, info)
            self._trace_dlopen(path, found, info)

    # -- data the program reads ---------------------------------------------------------------
    def add_kept_paths(self, pattern: str) -> None:
        """Keep files as they are (no ELF tracing); a matched directory is kept whole."""
        if not pattern.startswith("/"):
            raise SmithError("--keep %s must be an absolute glob inside the root" % pattern)
        matches = glob_in_root(self.fs, pattern)
        if not matches:
            raise SmithError("--keep %s matched nothing in the root %s" % (pattern, self.fs.root))
        self.paths.update(kept_paths(self.fs, matches))

    def _trace_dlopen(self, path: str, found: Resolved, info: ElfInfo) -> None:
        procs = [p for p in self.processes if p.kind == info.kind]
        if not procs:
            if self.processes:
                raise SmithError("extra library %s is %s/%s but no program given is of that kind"
                                 % (path, info.elfclass, info.machine))
            # No dynamic program (e.g. static): trace the library on its own search path.
            for proc in self._processes(path, found, info):
                proc.load_all()
                self._keep_process(proc)
            return
        for proc in procs:
            before = len(proc.objects)
            proc.add_dlopened(path, found, info)
            for obj in proc.objects[before:]:
                self.keep(obj.found)
                if obj.via_conf:
                    self._need_ld_so_cache(obj.path)

    # -- NSS --------------------------------------------------------------------------------
    def add_nss(self) -> None:
        """libc dlopens its NSS modules; glibc 2.36 has files/dns in libc, so they may be absent."""
        for proc in self.processes:
            for name in NSS_MODULES:
                try:
                    before = len(proc.objects)
                    proc.map_object(name, proc.main)
                except SmithError:
                    continue  # not shipped in this root: built into libc
                for obj in proc.objects[before:]:
                    proc.load_deps(obj)
            self._keep_process(proc)

    def result(self) -> ClosureResult:
        return ClosureResult(sorted(self.paths), self.processes, self.warnings)


def compute_closure(root: str, programs: Iterable[str], env: Optional[Dict[str, str]] = None,
                    nss: bool = False, extra_libs: Iterable[str] = (),
                    elf_cache: Optional[ElfCache] = None, keep: Iterable[str] = (),
                    platform: Optional[str] = None) -> ClosureResult:
    """`platform` ("linux/arm64"): every ELF file must be of its machine (else: of the first
    program's); search paths, ld.so names and $PLATFORM follow each file's own machine."""
    c = Closure(root, env, elf_cache, platform)
    programs = list(programs)
    if not programs:
        raise SmithError("give at least one program path inside the root")
    for p in programs:
        c.add_program(p)
    for pattern in extra_libs:
        c.add_extra_libs(pattern)
    for pattern in keep:
        c.add_kept_paths(pattern)
    if nss:
        c.add_nss()
    for w in c.warnings:
        print("smith closure: warning: %s" % for_terminal(w), file=sys.stderr)
    return c.result()

