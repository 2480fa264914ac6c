"""smith-runtime: a runc-compatible OCI runtime in pure Python (stdlib + ctypes), railcar's role.

`python3 -I -S -m smith.runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...`
with runc's commands: create, start, run, state, kill, delete, exec, list, ps, features.
Nothing here imports third-party code or other smith subpackages (only smith.errors and
smith.linux's start_time), so the package runs as a zipapp on the machine's /usr/bin/python3. Everything on the start path is
imported lazily and kept lean (no argparse, json, ctypes, signal, subprocess, typing).

Layout: main.py (global options, dispatch) -> commands/<name>.py (one per command) ->
container.py (lifecycle, runtime side) / execproc.py (exec) -> init.py (container side:
namespaces, rootfs.py with inroot.py (paths in the rootfs through descriptors), identity.py,
console.py, seccomp.py) with cgroups.py, hooks.py,
spec.py (config.json checks), state.py (state dir + flock), libc.py (syscalls).
The test/bench helpers (zipapp build, busybox bundle) are smith/testutil/runtime_bundle.py.
"""

# What the runtime's zipapp holds, as `only` paths of the smith package: //:smith-runtime, the
# runtime the Pants rules install for tests and runs, and the tests all pack this list.
ZIPAPP_ONLY = ("smith/__init__.py", "smith/errors.py", "smith/linux.py", "smith/runtime")


class _ZipFinder:
    """Imports smith.* from the zipapp once each: zipimport reads and unmarshals every module
    twice (its get_filename, called while making the spec, loads the code too) and opens the
    archive for each read. This serves the archive's precompiled .pyc entries from one
    descriptor with one pread each (measured: 17.3M -> ~10M instructions for the modules of
    `run`). Anything it cannot serve exactly as zipimport would (another Python's .pyc, a
    compressed entry) is left to zipimport."""

    def __init__(self, zi, toc, fd, magic):
        self.zi, self.toc, self.fd, self.magic, self.codes = zi, toc, fd, magic, {}

    def find_spec(self, name, path=None, target=None):
        if not name.startswith("smith."):
            return None
        rel = name.replace(".", "/")
        pkg = rel + "/__init__.pyc" in self.toc
        entry = self.toc.get(rel + "/__init__.pyc" if pkg else rel + ".pyc")
        if entry is None or entry[1] != 0:  # absent, or not stored
            return None
        import posix  # not os: see posixos.py
        off, size = entry[4], entry[2]
        head = posix.pread(self.fd, 30, off)
        data = posix.pread(self.fd, size, off + 30 + int.from_bytes(head[26:28], "little")
                        + int.from_bytes(head[28:30], "little"))
        if len(data) != size or data[:4] != self.magic or data[4:8] != b"\x01\0\0\0":
            return None  # not an unchecked-hash .pyc of this interpreter
        import _frozen_importlib
        import marshal
        self.codes[name] = marshal.loads(memoryview(data)[16:])
        spec = _frozen_importlib.ModuleSpec(name, self, origin=entry[0], is_package=pkg)
        if pkg:
            spec.submodule_search_locations = [self.zi.archive + "/" + rel]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.codes.pop(module.__name__), module.__dict__)

    def get_source(self, name):  # for tracebacks (linecache)
        return self.zi.get_source(name)

    def is_package(self, name):
        return self.zi.is_package(name)


def _install_zip_finder():
    import sys
    zi = globals().get("__loader__")
    zipimport = sys.modules.get("zipimport")
    if zipimport is None or not isinstance(zi, zipimport.zipimporter):
        return  # not run from a zipapp
    try:
        import _frozen_importlib_external
        import posix
        toc = zipimport._zip_directory_cache[zi.archive]
        fd = posix.open(zi.archive, posix.O_RDONLY | posix.O_CLOEXEC)
        sys.meta_path.insert(0, _ZipFinder(zi, toc, fd, _frozen_importlib_external.MAGIC_NUMBER))
    except (AttributeError, KeyError, OSError):
        return


_install_zip_finder()
