"""The ELF reader agrees with binutils' readelf, and corrupt files give a clear error."""
import os
import re
import subprocess

import pytest

from smith.elf.elfinfo import parse_elf, peek_kind
from smith.errors import SmithError
from smith.testutil.debian import require_tools, tool_env

SAMPLES = ["/usr/bin/ls", "/usr/bin/python3", "/usr/lib/x86_64-linux-gnu/libc.so.6",
           "/usr/lib/x86_64-linux-gnu/libselinux.so.1", "/usr/bin/gcc", "/usr/bin/openssl"]


def _readelf(path: str) -> str:
    return subprocess.run(["readelf", "-dlW", path], env=tool_env(), stdout=subprocess.PIPE,
                          check=True, text=True).stdout


@pytest.mark.parametrize("path", [p for p in SAMPLES if os.path.exists(p)])
def test_dynamic_entries_match_readelf(path: str) -> None:
    require_tools("readelf")
    out = _readelf(os.path.realpath(path))
    info = parse_elf(os.path.realpath(path), path)
    assert list(info.needed) == re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)
    assert info.soname == (re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", out) or [None])[0]
    runpath = re.findall(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", out)
    assert info.runpath == (tuple(runpath[0].split(":")) if runpath else None)
    interp = re.findall(r"\[Requesting program interpreter: (.*)\]", out)
    assert info.interp == (interp[0] if interp else None)
    assert info.kind == ("ELFCLASS64", "ELFDATA2LSB", "EM_X86_64") == peek_kind(os.path.realpath(path))


def test_not_elf_and_truncated(tmp_path) -> None:
    text = tmp_path / "script"
    text.write_text("#!/bin/sh\n")
    assert parse_elf(str(text), "/script") is None and peek_kind(str(text)) is None
    cut = tmp_path / "libcut.so"
    cut.write_bytes(open(os.path.realpath("/usr/lib/x86_64-linux-gnu/libc.so.6"), "rb").read()[:100])
    with pytest.raises(SmithError, match="cannot read ELF file /lib/libcut.so"):
        parse_elf(str(cut), "/lib/libcut.so")


# -- hostile ELF headers: a SmithError naming the file, never another exception ----------------------
import struct  # noqa: E402
import subprocess as _sp  # noqa: E402
import sys  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import smith  # noqa: E402

SAMPLE = os.path.realpath("/usr/bin/env")  # small, dynamic, PT_INTERP + PT_DYNAMIC + DT_NEEDED
PT_DYNAMIC, PT_INTERP = 2, 3


def _layout(data: bytes):
    """Field offsets of a little-endian ELF64: [(name, offset, width)]."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    fields = [("e_ident.class", 4, 1), ("e_ident.data", 5, 1), ("e_type", 16, 2), ("e_machine", 18, 2),
              ("e_phoff", 32, 8), ("e_shoff", 40, 8), ("e_phentsize", 54, 2), ("e_phnum", 56, 2),
              ("e_shentsize", 58, 2), ("e_shnum", 60, 2), ("e_shstrndx", 62, 2)]
    for i in range(phnum):
        at = phoff + 56 * i
        ptype, = struct.unpack_from("<I", data, at)
        fields += [("ph%d.p_type" % i, at, 4), ("ph%d.p_offset" % i, at + 8, 8),
                   ("ph%d.p_vaddr" % i, at + 16, 8), ("ph%d.p_filesz" % i, at + 32, 8)]
        if ptype == PT_DYNAMIC:
            dyn_off, dyn_size = struct.unpack_from("<Q", data, at + 8)[0], struct.unpack_from("<Q", data, at + 32)[0]
            for j in range(min(dyn_size // 16, 12)):
                fields += [("dyn%d.d_tag" % j, dyn_off + 16 * j, 8), ("dyn%d.d_val" % j, dyn_off + 16 * j + 8, 8)]
    return fields


def _phdr(data: bytes, ptype: int) -> int:
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    return next(phoff + 56 * i for i in range(phnum) if struct.unpack_from("<I", data, phoff + 56 * i)[0] == ptype)


def _poke(data: bytes, offset: int, width: int, value: int) -> bytes:
    out = bytearray(data)
    out[offset:offset + width] = value.to_bytes(width, "little")
    return bytes(out)


def _parse_bytes(tmp_path, data: bytes):
    path = tmp_path / "libhostile.so"
    path.write_bytes(data)
    return parse_elf(str(path), "/lib/libhostile.so")


@pytest.fixture(scope="module")
def sample() -> bytes:
    with open(SAMPLE, "rb") as f:
        data = f.read()
    assert data[4:6] == b"\x02\x01", "the sample must be a little-endian ELF64"
    return data


@pytest.mark.parametrize("case", [
    "interp_size_huge", "interp_size_2_62", "interp_offset_huge", "phoff_huge", "phoff_past_end",
    "phentsize_zero", "dynamic_size_huge", "dynamic_offset_huge", "needed_string_past_end",
    "strtab_string_unterminated", "header_truncated"])
def test_hostile_headers_are_clear_errors(tmp_path, sample: bytes, case: str) -> None:
    interp, dyn = _phdr(sample, PT_INTERP), _phdr(sample, PT_DYNAMIC)
    dyn_off, = struct.unpack_from("<Q", sample, dyn + 8)
    needed = next(dyn_off + 16 * j for j in range(64) if struct.unpack_from("<q", sample, dyn_off + 16 * j)[0] == 1)
    data = {
        "interp_size_huge": lambda: _poke(sample, interp + 32, 8, 2 ** 64 - 1),
        "interp_size_2_62": lambda: _poke(sample, interp + 32, 8, 2 ** 62),
        "interp_offset_huge": lambda: _poke(sample, interp + 8, 8, 2 ** 63),
        "phoff_huge": lambda: _poke(sample, 32, 8, 2 ** 63 + 5),
        "phoff_past_end": lambda: _poke(sample, 32, 8, len(sample) - 8),
        "phentsize_zero": lambda: _poke(sample, 54, 2, 0),
        "dynamic_size_huge": lambda: _poke(sample, dyn + 32, 8, 2 ** 62),
        "dynamic_offset_huge": lambda: _poke(sample, dyn + 8, 8, 2 ** 64 - 16),
        "needed_string_past_end": lambda: _poke(sample, needed + 8, 8, 2 ** 63),
        "strtab_string_unterminated": lambda: sample + b"x" * 70000,  # appended, then pointed at below
        "header_truncated": lambda: sample[:40],
    }[case]()
    if case == "strtab_string_unterminated":
        strtab_vaddr = next(struct.unpack_from("<Q", data, dyn_off + 16 * j + 8)[0] for j in range(64)
                            if struct.unpack_from("<q", data, dyn_off + 16 * j)[0] == 5)
        load = [p for p in _loads(data) if p[1] <= strtab_vaddr < p[1] + p[2]][0]
        strtab_off = strtab_vaddr - load[1] + load[0]
        data = _poke(data, needed + 8, 8, len(sample) - strtab_off)
    with pytest.raises(SmithError, match=r"^cannot read ELF file /lib/libhostile\.so: "):
        _parse_bytes(tmp_path, data)


def _loads(data: bytes):
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    out = []
    for i in range(phnum):
        at = phoff + 56 * i
        if struct.unpack_from("<I", data, at)[0] == 1:
            out.append((struct.unpack_from("<Q", data, at + 8)[0], struct.unpack_from("<Q", data, at + 16)[0],
                        struct.unpack_from("<Q", data, at + 32)[0]))
    return out


def test_section_headers_are_ignored_as_ld_so_ignores_them(tmp_path, sample: bytes) -> None:
    good = parse_elf(SAMPLE, "/usr/bin/env")
    for offset, width, value in [(40, 8, 2 ** 64 - 1), (62, 2, 0xffff), (58, 2, 0), (60, 2, 0xffff)]:
        assert _parse_bytes(tmp_path, _poke(sample, offset, width, value)) == good


_SPECIAL = (0, 1, 2, 7, 8, 16, 56, 64, 4096, 4097, 65535, 2 ** 31, 2 ** 32 - 1, 2 ** 62, 2 ** 63, 2 ** 63 + 1,
            2 ** 64 - 1)


def _value(width: int):
    top = 2 ** (8 * width) - 1
    return st.one_of(st.integers(0, top), st.sampled_from(sorted({v for v in _SPECIAL if v <= top} | {top})))


def _mutations(data: bytes):
    """Strategy: 1-4 header fields of `data` set to random, boundary or near-file-size values, and
    sometimes the file cut short."""
    fields = _layout(data)

    @st.composite
    def mutate(draw):
        out = data
        for _ in range(draw(st.integers(1, 4))):
            _, offset, width = draw(st.sampled_from(fields))
            if draw(st.booleans()):
                value = draw(_value(width))
            else:  # near the file size: the boundary cases of every offset check
                value = max(0, min(2 ** (8 * width) - 1, len(data) + draw(st.integers(-64, 64))))
            out = _poke(out, offset, width, value)
        if draw(st.integers(0, 5)) == 0:
            out = out[:draw(st.integers(0, len(out)))]
        return out

    return mutate()


def test_mutated_headers_give_a_result_or_a_smith_error(tmp_path_factory, sample: bytes) -> None:
    tmp = tmp_path_factory.mktemp("mutated")

    @given(_mutations(sample))
    def check(data: bytes) -> None:
        try:
            info = _parse_bytes(tmp, data)
        except SmithError as e:
            assert str(e).startswith("cannot read ELF file /lib/libhostile.so") or "/lib/libhostile.so" in str(e)
        else:
            assert info is None or isinstance(info.needed, tuple)

    check()


def test_closure_cli_names_a_hostile_elf_and_exits_1(tmp_path, sample: bytes) -> None:
    """`smith closure` on a program with a huge PT_INTERP: one error line, status 1, no traceback."""
    (tmp_path / "root" / "bin").mkdir(parents=True)
    prog = tmp_path / "root" / "bin" / "prog"
    prog.write_bytes(_poke(sample, _phdr(sample, PT_INTERP) + 32, 8, 2 ** 64 - 1))
    prog.chmod(0o755)
    env = dict(tool_env(), PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    proc = _sp.run([sys.executable, "-m", "smith", "closure", "--root", str(tmp_path / "root"), "/bin/prog"],
                   env=env, stdout=_sp.PIPE, stderr=_sp.PIPE, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("smith closure: error: cannot read ELF file /bin/prog: PT_INTERP is "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
