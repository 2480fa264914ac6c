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
