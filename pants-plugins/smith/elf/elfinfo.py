"""What the dynamic loader reads from one ELF file, parsed once with pyelftools and cached."""
import os
from typing import Dict, List, NamedTuple, Optional, Tuple

from elftools.common.exceptions import ELFError
from elftools.common.utils import parse_cstring_from_stream, struct_parse
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE

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


def parse_elf(host_path: str, shown_as: str) -> Optional[ElfInfo]:
    """Parse `host_path`; None when it is not an ELF file at all.

    Reads the program headers and the PT_DYNAMIC entries with pyelftools' structs directly:
    building its section-based DynamicSegment costs ~10x more and ld.so ignores sections anyway.
    """
    with open(host_path, "rb") as f:
        if f.read(4) != ELF_MAGIC:
            return None
        f.seek(0)
        try:
            elf = ELFFile(f)
            hdr = elf.header
            phdrs = [struct_parse(elf.structs.Elf_Phdr, f, hdr.e_phoff + i * hdr.e_phentsize)
                     for i in range(hdr.e_phnum)]
            interp = None
            dyn_tags: List[Tuple[str, int]] = []
            for ph in phdrs:
                if ph.p_type == "PT_INTERP":
                    f.seek(ph.p_offset)
                    interp = f.read(ph.p_filesz).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                elif ph.p_type == "PT_DYNAMIC":
                    size = elf.structs.Elf_Dyn.sizeof()
                    for i in range(ph.p_filesz // size):
                        d = struct_parse(elf.structs.Elf_Dyn, f, ph.p_offset + i * size)
                        if d.d_tag == "DT_NULL":
                            break
                        dyn_tags.append((d.d_tag, d.d_val))
            dynamic = any(ph.p_type == "PT_DYNAMIC" for ph in phdrs)
            strtab = _file_offset(phdrs, dict(dyn_tags).get("DT_STRTAB"), shown_as) if dyn_tags else None

            def string(value: int) -> str:
                if strtab is None:
                    raise SmithError("ELF file %s has dynamic strings but no DT_STRTAB" % shown_as)
                return parse_cstring_from_stream(f, strtab + value).decode("utf-8", "surrogateescape")

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
        except (ELFError, ConstructError, ValueError, KeyError, AttributeError, TypeError) as e:
            raise SmithError("cannot read ELF file %s: %s; is it truncated or corrupt?" % (shown_as, e))


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
    with open(host_path, "rb") as f:
        head = f.read(20)
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
