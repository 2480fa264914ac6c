"""What the dynamic loader reads from one ELF file, parsed once with pyelftools and cached."""
import io
import os
import struct
from typing import BinaryIO, Dict, List, NamedTuple, Optional, Tuple

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.construct import ConstructError
from elftools.elf.enums import ENUM_E_MACHINE
from elftools.elf.structs import ELFStructs

from smith.errors import SmithError

DF_1_NODEFLIB = 0x800
ELF_MAGIC = b"\x7fELF"


class ElfInfo(NamedTuple):
    elfclass: str  # "ELFCLASS64"
    data: str  # "ELFDATA2LSB"
    machine: str  # "EM_X86_64"
    etype: str  # "ET_DYN"
    interp: Optional[str]  # PT_INTERP
    dynamic: bool  # has PT_DYNAMIC
    needed: Tuple[str, ...]
    rpath: Tuple[str, ...]  # DT_RPATH entries, in order; empty when DT_RUNPATH exists
    runpath: Optional[Tuple[str, ...]]  # DT_RUNPATH entries; None when the tag is absent
    soname: Optional[str]
    nodeflib: bool  # DF_1_NODEFLIB: skip ld.so.cache and default dirs

    @property
    def kind(self) -> Tuple[str, str, str]:
        """ld.so only loads objects of its own class, byte order and machine."""
        return (self.elfclass, self.data, self.machine)


def _split_path(value: str) -> Tuple[str, ...]:
    # Empty entries (e.g. "a::b") would mean the cwd to ld.so; we drop them (see README note).
    return tuple(p for p in value.split(":") if p)


# Caps: every offset and size read from the file is checked against the file's size and these before
# anything is read, so a hostile header is a SmithError, never a huge read, seek or allocation.
MAX_INTERP = 4096  # PATH_MAX: the kernel refuses a longer PT_INTERP (ENOEXEC)
MAX_DYNAMIC = 64 << 10  # bytes of PT_DYNAMIC (4096 entries; real objects have < 100)
MAX_STRING = 64 << 10  # one DT_NEEDED / DT_RPATH / DT_RUNPATH / DT_SONAME string
# Everything a hostile file can make the parser raise (pyelftools' own errors, construct's, struct's,
# and what a bogus enum or header value does to the code around them).
_PARSE_ERRORS = (ELFError, ConstructError, struct.error, ValueError, OverflowError, KeyError, IndexError,
                 AttributeError, TypeError, UnicodeError)


class _Bad(Exception):
    """What is wrong with the file (becomes the SmithError naming it)."""


def parse_elf(host_path: str, shown_as: str) -> Optional[ElfInfo]:
    """Parse `host_path`; None when it is not an ELF file at all.

    Reads the ELF header, the program headers and the PT_DYNAMIC entries with pyelftools' structs
    directly, from bounded reads: building its section-based DynamicSegment costs ~10x more, and
    ld.so ignores sections anyway (so a bogus section header table is not an error). A file that is
    ELF but malformed is a SmithError naming `shown_as`, never another exception.
    """
    try:
        with open(host_path, "rb") as f:
            return _parse(f, shown_as)
    except _Bad as e:
        raise SmithError("cannot read ELF file %s: %s" % (shown_as, e)) from None
    except OSError as e:
        raise SmithError("cannot read ELF file %s: %s" % (shown_as, e.strerror or e)) from None
    except MemoryError:
        raise SmithError("cannot read ELF file %s: a size in its headers is too large; is it corrupt?"
                         % shown_as) from None
    except _PARSE_ERRORS as e:
        raise SmithError("cannot read ELF file %s: %s; is it truncated or corrupt?"
                         % (shown_as, e or type(e).__name__)) from None


def _read_at(f: BinaryIO, size: int, offset: int, length: int, what: str) -> bytes:
    """`length` bytes at `offset`, both checked against the file's `size` first."""
    if offset < 0 or length < 0 or offset + length > size:
        raise _Bad("%s (%d bytes at offset %d) lies past the end of the file (%d bytes); is it truncated "
                   "or corrupt?" % (what, length, offset, size))
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise _Bad("%s: the file ended early; is it truncated?" % what)
    return data


def _parse(f: BinaryIO, shown_as: str) -> Optional[ElfInfo]:
    head = f.read(64)
    if head[:4] != ELF_MAGIC:
        return None
    size = os.fstat(f.fileno()).st_size
    if len(head) < 6 or head[4] not in _CLASSES or head[5] not in _DATAS:
        raise _Bad("unknown ELF class or byte order (e_ident %s)" % head[4:6].hex())
    structs = ELFStructs(little_endian=head[5] == 1, elfclass=32 if head[4] == 1 else 64)
    structs.create_basic_structs()
    if len(head) < structs.Elf_Ehdr.sizeof():
        raise _Bad("the ELF header is truncated (%d bytes)" % len(head))
    hdr = struct_parse(structs.Elf_Ehdr, io.BytesIO(head), 0)
    structs.create_advanced_structs(hdr.e_type, hdr.e_machine, hdr.e_ident.EI_OSABI)
    phsize = structs.Elf_Phdr.sizeof()
    phdrs = []
    if hdr.e_phnum:
        if hdr.e_phentsize != phsize:  # ld.so: "ELF file's phentsize not the expected size"
            raise _Bad("program header entries are %d bytes, not %d" % (hdr.e_phentsize, phsize))
        table = io.BytesIO(_read_at(f, size, hdr.e_phoff, hdr.e_phnum * phsize,
                                    "the program header table (%d entries)" % hdr.e_phnum))
        phdrs = [struct_parse(structs.Elf_Phdr, table, i * phsize) for i in range(hdr.e_phnum)]
    interp = None
    dyn_tags: List[Tuple[str, int]] = []
    for ph in phdrs:
        if ph.p_type == "PT_INTERP":
            if ph.p_filesz > MAX_INTERP:
                raise _Bad("PT_INTERP is %d bytes; a program interpreter path is at most %d"
                           % (ph.p_filesz, MAX_INTERP))
            raw = _read_at(f, size, ph.p_offset, ph.p_filesz, "PT_INTERP")
            interp = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        elif ph.p_type == "PT_DYNAMIC":
            if ph.p_filesz > MAX_DYNAMIC:
                raise _Bad("PT_DYNAMIC is %d bytes, more than the %d allowed" % (ph.p_filesz, MAX_DYNAMIC))
            dyn = io.BytesIO(_read_at(f, size, ph.p_offset, ph.p_filesz, "PT_DYNAMIC"))
            entsize = structs.Elf_Dyn.sizeof()
            for i in range(ph.p_filesz // entsize):
                d = struct_parse(structs.Elf_Dyn, dyn, i * entsize)
                if d.d_tag == "DT_NULL":
                    break
                dyn_tags.append((d.d_tag, d.d_val))
    dynamic = any(ph.p_type == "PT_DYNAMIC" for ph in phdrs)
    strtab = _file_offset(phdrs, dict(dyn_tags).get("DT_STRTAB"), shown_as) if dyn_tags else None

    def string(value: int) -> str:
        if strtab is None:
            raise SmithError("ELF file %s has dynamic strings but no DT_STRTAB" % shown_as)
        return _cstring(f, size, strtab + value).decode("utf-8", "surrogateescape")

    needed, rpath, runpath, soname, flags_1 = [], (), None, None, 0  # type: ignore[var-annotated]
    for tag, val in dyn_tags:
        if tag == "DT_NEEDED":
            needed.append(string(val))
        elif tag == "DT_RPATH":
            rpath += _split_path(string(val))
        elif tag == "DT_RUNPATH":
            runpath = (runpath or ()) + _split_path(string(val))
        elif tag == "DT_SONAME":
            soname = string(val)
        elif tag == "DT_FLAGS_1":
            flags_1 = val
    if runpath is not None:
        rpath = ()  # ld.so ignores DT_RPATH when DT_RUNPATH is there (get-dynamic-info.h)
    ident = hdr.e_ident
    return ElfInfo(ident["EI_CLASS"], ident["EI_DATA"], str(hdr.e_machine), str(hdr.e_type), interp,
                   dynamic, tuple(needed), rpath, runpath, soname, bool(flags_1 & DF_1_NODEFLIB))


def _cstring(f: BinaryIO, size: int, offset: int) -> bytes:
    """The NUL-terminated string at `offset`, at most MAX_STRING bytes."""
    if offset >= size:
        raise _Bad("a dynamic string at offset %d lies past the end of the file (%d bytes)" % (offset, size))
    f.seek(offset)
    data = b""
    while len(data) <= MAX_STRING:
        chunk = f.read(256 if not data else 4096)
        end = chunk.find(b"\0")
        if end >= 0:
            return data + chunk[:end]
        if not chunk:
            raise _Bad("the dynamic string at offset %d runs to the end of the file" % offset)
        data += chunk
    raise _Bad("the dynamic string at offset %d is longer than %d bytes" % (offset, MAX_STRING))


def _file_offset(phdrs, vaddr: Optional[int], shown_as: str) -> Optional[int]:
    """Where a virtual address of a PT_LOAD segment lies in the file."""
    if vaddr is None:
        return None
    for ph in phdrs:
        if ph.p_type == "PT_LOAD" and ph.p_vaddr <= vaddr < ph.p_vaddr + ph.p_filesz:
            return vaddr - ph.p_vaddr + ph.p_offset
    raise SmithError("ELF file %s: DT_STRTAB address %#x is in no PT_LOAD segment" % (shown_as, vaddr))


_MACHINE_NAMES = {v: k for k, v in ENUM_E_MACHINE.items() if isinstance(v, int)}
_CLASSES = {1: "ELFCLASS32", 2: "ELFCLASS64"}
_DATAS = {1: "ELFDATA2LSB", 2: "ELFDATA2MSB"}


def peek_kind(host_path: str) -> Optional[Tuple[str, str, str]]:
    """(class, byte order, machine) from the first bytes, as ld.so checks them before anything else;
    None when not ELF. Lets a wrong-class candidate be skipped without parsing it."""
    try:
        with open(host_path, "rb") as f:
            head = f.read(20)
    except OSError as e:
        raise SmithError("cannot read %s: %s" % (host_path, e.strerror or e)) from None
    if len(head) < 20 or head[:4] != ELF_MAGIC:
        return None
    order = "little" if head[5] == 1 else "big"
    machine = int.from_bytes(head[18:20], order)
    return (_CLASSES.get(head[4], "ELFCLASS?%d" % head[4]), _DATAS.get(head[5], "ELFDATA?%d" % head[5]),
            _MACHINE_NAMES.get(machine, "EM_%d" % machine))


class ElfCache:
    """Parse each file once, keyed by its identity (dev, inode, size, mtime)."""

    def __init__(self) -> None:
        self._by_id: Dict[Tuple[int, int, int, int], Optional[ElfInfo]] = {}
        self._kinds: Dict[Tuple[int, int, int, int], Optional[Tuple[str, str, str]]] = {}

    def kind(self, host_path: str, st: os.stat_result) -> Optional[Tuple[str, str, str]]:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._kinds:
            info = self._by_id.get(key)
            self._kinds[key] = info.kind if info is not None else peek_kind(host_path)
        return self._kinds[key]

    def get(self, host_path: str, st: os.stat_result, shown_as: str) -> Optional[ElfInfo]:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._by_id:
            self._by_id[key] = parse_elf(host_path, shown_as)
        return self._by_id[key]


DEFAULT_CACHE = ElfCache()
