"""The first thing a smith zipapp with .pyc runs: its #! line execs this module's code, compiled by
the target Python and stored in front of the zip (the line checks the magic number first).

zipimport, before it loads anything, parses the archive's whole central directory in Python:
2.3M instructions for the runtime's 70 entries, 8% of a container start. smith.zipapp_cli writes
an index of the archive's precompiled modules (name -> entry, offset, size, package?) into the
call of _boot at the end of this source, so each module costs one pread and a marshal.loads.
Whatever the index cannot serve exactly (another Python's bytecode, a damaged entry) is left to
zipimport, which finds the `.py` files: the archive stays on sys.path[0].
Runs on every Python >= 3.9 (no f-strings with =, no walrus) and imports only built-in modules.
"""


class _Finder:
    def __init__(self, archive, fd, base, index, magic):
        self.archive, self.fd, self.base, self.index, self.magic = archive, fd, base, index, magic
        self.zip, self.codes = None, {}

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        import posix
        arc, offset, size, pkg = entry
        data = posix.pread(self.fd, size, self.base + offset)
        # an unchecked-hash .pyc of this interpreter, as written; else zipimport's turn
        if len(data) != size or data[:4] != self.magic or data[4:8] != b"\x01\0\0\0":
            return None
        import marshal
        try:
            self.codes[name] = marshal.loads(memoryview(data)[16:])
        except (EOFError, ValueError, TypeError):
            return None
        from _frozen_importlib import ModuleSpec
        spec = ModuleSpec(name, self, origin=self.archive + "/" + arc, is_package=pkg)
        if pkg:
            spec.submodule_search_locations = [self.archive + "/" + name.replace(".", "/")]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.codes.pop(module.__name__), module.__dict__)

    # The rest of the loader protocol (sources for tracebacks, data files): zipimport's.
    def _zipimporter(self):
        if self.zip is None:
            import zipimport
            self.zip = zipimport.zipimporter(self.archive)
        return self.zip

    def is_package(self, name):
        return self.index[name][3]

    def get_code(self, name):
        return self._zipimporter().get_code(name)

    def get_source(self, name):
        return self._zipimporter().get_source(name)

    def get_filename(self, name):
        return self._zipimporter().get_filename(name)

    def get_data(self, path):
        return self._zipimporter().get_data(path)

    def get_resource_reader(self, name):
        return self._zipimporter().get_resource_reader(name)


class _PathEntry:
    """The path entry finder of the archive (sys.path[0]): PathFinder asks it about every module
    it looks for, e.g. fcntl, before the stdlib's directories; only the archive's own names
    need zipimport (an entry the meta path finder refused)."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, target=None):
        if name not in self.finder.index:
            return None
        find = getattr(self.finder._zipimporter(), "find_spec", None)  # Python >= 3.10
        return find(name, target) if find else None

    def invalidate_caches(self):
        pass


def _boot(main, magic, base, index):
    """Run MAIN.__main__ from the archive named by argv[1] (the #! line's script argument)."""
    import posix
    import sys
    from _frozen_importlib_external import MAGIC_NUMBER
    archive = sys.argv.pop(1)
    if archive[:1] != "/":  # absolute: the program may change directory before it imports
        archive = posix.getcwd() + "/" + archive
    sys.path[0] = archive
    if MAGIC_NUMBER == magic and index:
        fd = posix.open(archive, posix.O_RDONLY | posix.O_CLOEXEC)
        finder = _Finder(archive, fd, base, index, magic)
        sys.meta_path.insert(0, finder)
        sys.path_importer_cache[archive] = _PathEntry(finder)
    __import__(main + ".__main__")
