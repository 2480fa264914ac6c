"""A model of glibc's ld.so mapping one process' objects, inside a root (see elf/dl-load.c).

Per process: PT_INTERP is mapped first; DT_NEEDED is walked breadth-first; a name already
loaded (by the name it was requested as, or its DT_SONAME) is not searched again, and a file
already loaded (same inode) under another name is the same object. A name is searched in:
  1. DT_RPATH of the requesting object, then of its loader, and up to the executable —
     only when the requesting object has no DT_RUNPATH;
  2. LD_LIBRARY_PATH (from the image environment);
  3. DT_RUNPATH of the requesting object only;
  4. the root's ld.so.conf dirs (what ldconfig would put in ld.so.cache) and
  5. the default dirs — both skipped for objects linked with -z nodeflib.
Candidates of another ELF class, byte order or machine are skipped, as ld.so does.

A Process models one CPU kind: `platform` is its $PLATFORM (see searchpath.py). Variants of a
library in glibc-hwcaps / legacy hwcap subdirectories of the dirs searched up to the one that
holds it are mapped as extra objects, with their own dependencies: some CPU may load them.
"""
import os
from typing import Dict, List, Optional, Sequence, Set, Tuple

from smith.elf.elfinfo import ElfCache, ElfInfo
from smith.elf.rootfs import Resolved, RootFS
from smith.elf.searchpath import SearchConfig, platforms_of
from smith.errors import SmithError


Variant = Tuple[str, Resolved, ElfInfo]


class LoadedObject:
    __slots__ = ("path", "found", "info", "loader", "names", "origin", "via_conf")

    def __init__(self, path: str, found: Resolved, info: ElfInfo, loader: "Optional[LoadedObject]",
                 origin: str, via_conf: bool = False) -> None:
        self.path = path  # the path ld.so opened (may go through symlinks)
        self.found = found  # its canonical entry and the symlinks on the way
        self.info = info
        self.loader = loader  # the object whose DT_NEEDED made ld.so load this one
        self.names: Set[str] = set()
        if info.soname:
            self.names.add(info.soname)
        self.origin = origin  # what $ORIGIN expands to for this object's own paths
        self.via_conf = via_conf  # found only through /etc/ld.so.conf (needs ld.so.cache)


class Process:
    """The objects one executable loads: `objects[0]` is the executable itself."""

    def __init__(self, fs: RootFS, elf_cache: ElfCache, env: Dict[str, str],
                 main_path: str, main_found: Resolved, main_info: ElfInfo,
                 configs: Dict[Tuple[str, str, Optional[str]], SearchConfig],
                 platform: Optional[str] = None) -> None:
        self.fs = fs
        self.elf_cache = elf_cache
        self.kind = main_info.kind
        key = (main_info.machine, main_info.elfclass, platform)
        if key not in configs:
            configs[key] = SearchConfig(fs, main_info.machine, main_info.elfclass, platform)
        self.config = configs[key]
        self.platform = self.config.platform
        self.config_baseline = platforms_of(main_info.machine)[0]
        # The kernel gives the executable's $ORIGIN from /proc/self/exe: fully resolved.
        self.main = LoadedObject(main_path, main_found, main_info, None,
                                 os.path.dirname(main_found.path))
        self.objects: List[LoadedObject] = [self.main]
        self._by_inode: Dict[Tuple[int, int], LoadedObject] = {}
        self._remember(self.main)
        ld_path = env.get("LD_LIBRARY_PATH", "")
        # ld.so splits LD_LIBRARY_PATH on ':' and ';'; $ORIGIN there is the executable's.
        self.env_dirs = [p for p in ld_path.replace(";", ":").split(":") if p]

    def _remember(self, obj: LoadedObject) -> None:
        self._by_inode[(obj.found.st.st_dev, obj.found.st.st_ino)] = obj

    def load_all(self, preload: Sequence[str] = ()) -> List[str]:
        """Map the interpreter, the preloads (LD_PRELOAD, then /etc/ld.so.preload) and all
        dependencies; returns the preloads that were not found (ld.so ignores them, with a message)."""
        info = self.main.info
        if info.interp:
            found = self.fs.resolve(info.interp)
            if found is None or not found.is_file:
                raise SmithError("program interpreter %s of %s is missing from the root %s; add the "
                                 "package that ships it (libc6)" % (info.interp, self.main.path, self.fs.root))
            interp_info = self._elf(found, info.interp)
            if interp_info is None:
                raise SmithError("program interpreter %s of %s is not an ELF file" % (info.interp, self.main.path))
            if interp_info.kind != info.kind:
                raise SmithError("program interpreter %s is %s (%s) but %s is %s (%s): one image holds ELF "
                                 "files of one machine; use the libc6 built for %s"
                                 % (info.interp, interp_info.machine, interp_info.elfclass, self.main.path,
                                    info.machine, info.elfclass, info.machine))
            interp = LoadedObject(info.interp, found, interp_info, None, os.path.dirname(info.interp))
            interp.names.add(info.interp)
            self.objects.append(interp)
            self._remember(interp)
        queue = [self.main]
        ignored = []
        for name in preload:
            try:
                obj = self.map_object(name, self.main)
            except SmithError:
                ignored.append(name)
                continue
            if obj is not None:
                queue.append(obj)
        self.load_deps(*queue)
        return ignored

    def load_deps(self, *first: LoadedObject) -> None:
        """Breadth-first over DT_NEEDED, as _dl_map_object_deps does."""
        queue = list(first)
        while queue:
            obj = queue.pop(0)
            for name in obj.info.needed:
                new = self.map_object(name, obj)
                if new is not None:
                    queue.append(new)

    def add_dlopened(self, path: str, found: Resolved, info: ElfInfo) -> None:
        """An object the program dlopens by path (extra_libs): map it and its dependencies."""
        if self._loaded_name(path) is not None:
            return
        same = self._by_inode.get((found.st.st_dev, found.st.st_ino))
        if same is not None:
            same.names.add(path)
            return
        obj = LoadedObject(path, found, info, self.main, os.path.dirname(path))
        obj.names.add(path)
        self.objects.append(obj)
        self._remember(obj)
        self.load_deps(obj)

    def _loaded_name(self, name: str) -> Optional[LoadedObject]:
        for obj in self.objects:
            if name in obj.names:
                return obj
        return None

    def _elf(self, found: Resolved, shown_as: str) -> Optional[ElfInfo]:
        return self.elf_cache.get(self.fs.host(found.path), found.st, shown_as)

    def map_object(self, name: str, loader: LoadedObject) -> Optional[LoadedObject]:
        """Load `name` for `loader`; returns the new object, or None when already loaded."""
        if self._loaded_name(name) is not None:
            return None
        path, found, info, via_conf, variants = self.search(name, loader)
        for vpath, vfound, vinfo in variants:
            self._map_variant(vpath, vfound, vinfo, loader)
        same = self._by_inode.get((found.st.st_dev, found.st.st_ino))
        if same is not None:
            same.names.add(name)
            return None
        obj = LoadedObject(path, found, info, loader, os.path.dirname(path), via_conf)
        obj.names.add(name)
        self.objects.append(obj)
        self._remember(obj)
        return obj

    def _map_variant(self, path: str, found: Resolved, info: ElfInfo, loader: LoadedObject) -> None:
        """A CPU-specific copy of a library: kept with its own dependencies, but it does not
        answer for the name (the baseline file does), so its DT_SONAME is not recorded."""
        if (found.st.st_dev, found.st.st_ino) in self._by_inode:
            return
        obj = LoadedObject(path, found, info, loader, os.path.dirname(path))
        obj.names.clear()
        self.objects.append(obj)
        self._remember(obj)
        self.load_deps(obj)

    def search_dirs(self, loader: LoadedObject) -> List[Tuple[str, str]]:
        """(dir, where-from) pairs in ld.so's order for DT_NEEDED entries of `loader`."""
        cfg = self.config
        dirs: List[Tuple[str, str]] = []

        def add(entries, origin, label):
            for e in entries:
                d = cfg.expand(e, origin)
                if d is not None:
                    dirs.append((d, label))

        if loader.info.runpath is None:
            visited_main = False
            obj: Optional[LoadedObject] = loader
            while obj is not None:
                add(obj.info.rpath, obj.origin, "RPATH of " + obj.path)
                visited_main |= obj is self.main
                obj = obj.loader
            if not visited_main:
                add(self.main.info.rpath, self.main.origin, "RPATH of " + self.main.path)
        add(self.env_dirs, self.main.origin, "LD_LIBRARY_PATH")
        if loader.info.runpath is not None:
            add(loader.info.runpath, loader.origin, "RUNPATH of " + loader.path)
        if not loader.info.nodeflib:
            for d in cfg.conf_dirs:
                dirs.append((d, "ld.so.conf"))
            for d in cfg.default_dirs:
                dirs.append((d, "default"))
        return dirs

    def search(self, name: str, loader: LoadedObject) -> Tuple[str, Resolved, ElfInfo, bool, List[Variant]]:
        """The file ld.so opens for `name` (path, entry, ELF info, found only via ld.so.conf) and
        the hwcap variants met before it that some CPU would open instead."""
        if "/" in name:  # a path: opened as is, no search
            cand = self._candidate(name, loader)
            if cand is None:
                raise SmithError("library %s needed by %s is missing from the root %s"
                                 % (name, loader.path, self.fs.root))
            return (name if name.startswith("/") else "/" + name, cand[0], cand[1], False, [])
        tried: List[str] = []
        variants: List[Variant] = []
        default = set(self.config.default_dirs)
        for d, label in self.search_dirs(loader):
            base = d.rstrip("/") or ""
            path = base + "/" + name
            if path in tried:
                continue
            tried.append(path)
            for sub in self.config.variant_subdirs:
                vdir = self.fs.resolve(base + "/" + sub.split("/", 1)[0])
                if vdir is None or not vdir.is_dir:
                    continue
                vpath = base + "/" + sub + "/" + name
                vcand = self._candidate(vpath, loader)
                if vcand is not None:
                    variants.append((vpath, vcand[0], vcand[1]))
            cand = self._candidate(path, loader)
            if cand is not None:
                via_conf = label == "ld.so.conf" and d not in default
                return (path, cand[0], cand[1], via_conf, variants)
        if variants:  # only CPU-specific copies: the first one stands for the name
            vpath, vfound, vinfo = variants[0]
            return (vpath, vfound, vinfo, False, variants[1:])
        where = "" if self.platform in (None, self.config_baseline) else (
            " on CPUs where ld.so expands $PLATFORM to %s" % self.platform)
        raise SmithError(
            "library %s needed by %s was not found in the root %s%s; searched: %s. Add the package "
            "that ships it, or set RUNPATH / LD_LIBRARY_PATH (--env) to its directory"
            % (name, loader.path, self.fs.root, where,
               ", ".join(os.path.dirname(t) for t in tried) or "(nothing)"))

    def _candidate(self, path: str, loader: LoadedObject) -> Optional[Tuple[Resolved, ElfInfo]]:
        found = self.fs.resolve(path)
        if found is None or not found.is_file:
            return None
        kind = self.elf_cache.kind(self.fs.host(found.path), found.st)
        if kind is None:
            raise SmithError("%s (needed by %s) is not an ELF file; ld.so stops with 'invalid ELF header'"
                             % (path, loader.path))
        if kind != self.kind:
            return None  # wrong class / byte order / machine: ld.so skips it and keeps searching
        return found, self._elf(found, path)
