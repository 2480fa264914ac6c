"""What this machine's glibc loader does, for tests that compare the closure with it."""
import re
import subprocess

LD_SO = "/lib64/ld-linux-x86-64.so.2"


def host_platform() -> str:
    """The $PLATFORM this machine's ld.so expands (glibc may replace the kernel's AT_PLATFORM
    `x86_64` with `haswell` or `xeon_phi`): the "(AT_PLATFORM; ...)" line of `ld.so --help`."""
    out = subprocess.run([LD_SO, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=True).stdout
    m = re.search(r"^\s+(\S+) \(AT_PLATFORM;", out, re.MULTILINE)
    assert m, "ld.so --help names no AT_PLATFORM:\n" + out
    return m.group(1)
