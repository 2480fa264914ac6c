"""linux.seccomp with real profiles, run by smith-runtime and by runc on the same bundle.

The profile is the OCI runtime-tools default (smith/testutil/seccomp_profiles.py), with the
`personality` values in one rule holding several conditions on argument 0, the form the issue
saw refused.
"""
import os

import pytest

from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools
from smith.testutil.seccomp_profiles import RUNTIME_TOOLS_DEFAULT


@pytest.fixture(scope="module")
def app():
    require_tools("runc", "busybox")
    return tb.cached_zipapp()


def run_both(app, tmp_path, script, seccomp, edit=None):
    def configure(c):
        c["linux"]["seccomp"] = seccomp
        c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
        if edit:
            edit(c)
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", script], edit=configure)
    out = {}
    for name, binary in (("smith", app), ("runc", "runc")):
        root = str(tmp_path / ("root-" + name))
        cid = "sc-%s-%d" % (name, os.getpid())
        out[name] = tb.runtime(binary, root, "run", cid, cwd=bundle)
        assert not tb.leftovers(cid), out[name].stderr
        # nothing but the compiled-program cache (bpfcache.py) stays
        assert not os.path.isdir(root) or not [n for n in os.listdir(root) if n != "@seccomp-bpf"]
    return out


def same(app, tmp_path, script, seccomp, edit=None):
    res = run_both(app, tmp_path, script, seccomp, edit)
    assert res["runc"].returncode == 0, res["runc"].stderr
    assert res["smith"].returncode == 0, res["smith"].stderr
    assert res["smith"].stdout == res["runc"].stdout, (res["smith"].stdout, res["runc"].stdout)
    return res["smith"].stdout


def test_runtime_tools_default_profile_like_runc(app, tmp_path):
    """The runtime-tools default profile: personality allowed for each listed value (several
    conditions on argument 0), clone with CLONE_NEW* refused (MASKED_EQ), chroot refused
    (the default action), the rest of a shell's work allowed."""
    script = ("linux32 uname -m; linux64 uname -m; "
              "unshare -u true 2>/dev/null; echo unshare=$?; "
              "chroot / true 2>/dev/null; echo chroot=$?; "
              "mkdir /tmp/d && echo ok > /tmp/d/f && cat /tmp/d/f; "
              "grep Seccomp: /proc/self/status")
    out = same(app, tmp_path, script, RUNTIME_TOOLS_DEFAULT)
    assert out == "i686\nx86_64\nunshare=1\nchroot=1\nok\nSeccomp:\t2\n", out


def test_several_conditions_on_one_argument_are_or_ed_like_runc(app, tmp_path):
    """runc adds a rule with two conditions on argument 0 as two rules: personality(8) and
    personality(0) are each refused, other values are not."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [
            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    out = same(app, tmp_path, "linux32 true 2>&1; linux64 true 2>&1; uname -m", profile)
    assert out.count("Permission denied") == 2 and out.endswith("x86_64\n"), out


def test_masked_eq_and_errno_values_like_runc(app, tmp_path):
    """SCMP_CMP_MASKED_EQ tests (arg & value) == valueTwo: personality(PER_LINUX32 = 8) matches
    0xff/8, personality(PER_LINUX = 0) does not. errnoRet is the error returned."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122,  # EDQUOT
         "args": [{"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 0xff, "valueTwo": 8}]},
        {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},  # ENOSPC
        {"names": ["no_such_syscall", "socketcall"], "action": "SCMP_ACT_ERRNO"},  # unknown / other arch: skipped
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},  # the default action: skipped
    ]}
    script = "linux32 true 2>&1; linux64 uname -m; hostname x 2>&1; echo done"
    out = same(app, tmp_path, script, profile)
    assert "Disk quota exceeded" in out and "x86_64" in out and "No space left on device" in out, out


def test_default_errno_ret_like_runc(app, tmp_path):
    """defaultErrnoRet is what every syscall without a rule returns."""
    profile = dict(RUNTIME_TOOLS_DEFAULT, defaultErrnoRet=122)
    out = same(app, tmp_path, "chroot / true 2>&1; echo rc=$?", profile)
    assert "Disk quota exceeded" in out and out.endswith("rc=1\n"), out


def test_flags_log_and_spec_allow(app, tmp_path):
    """runc 1.1.5 refuses every flag ("seccomp flags are not yet supported by runc"); crun and
    the runtime-spec accept these, and so does smith (libseccomp sets them on load)."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    res = run_both(app, tmp_path, "mkdir /tmp/x 2>&1; grep Seccomp: /proc/self/status", profile)
    assert res["runc"].returncode == 1 and "flags are not yet supported" in res["runc"].stderr
    assert res["smith"].returncode == 0, res["smith"].stderr
    assert "Operation not permitted" in res["smith"].stdout and "Seccomp:\t2" in res["smith"].stdout


BAD = [
    ("notify action", {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY"),
    ("notify default", {"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction"),
    ("unknown flag", {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]},
     "linux.seccomp.flags[0]: unknown seccomp flag"),
    ("killable recv flag", {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]},
     "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported"),
    ("seventh argument", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ", "value": 1}]}]},
     "linux.seccomp.syscalls[0].args[0].index"),
    ("negative value", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": -1}]}]},
     "linux.seccomp.syscalls[0].args[0].value"),
    ("args not objects", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [3]}]}, "linux.seccomp.syscalls[0].args[0]"),
    ("empty name", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names[0]"),
    ("errno too big", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}, "linux.seccomp.syscalls[0].errnoRet"),
    ("mixed endianness", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_MIPS"]},
     "linux.seccomp.architectures[0]"),
]


@pytest.mark.parametrize("name,profile,message", BAD, ids=[b[0] for b in BAD])
def test_refused_like_runc_with_the_field_named(app, tmp_path, name, profile, message):
    res = run_both(app, tmp_path, "echo ran", profile)
    assert res["runc"].returncode == 1, res["runc"].stdout  # runc refuses each of these too
    assert res["smith"].returncode == 1 and res["smith"].stdout == ""
    assert res["smith"].stderr.startswith("smith-runtime: error: ") and message in res["smith"].stderr, \
        res["smith"].stderr
    assert "Traceback" not in res["smith"].stderr


def test_empty_seccomp_object_is_no_filter_like_runc(app, tmp_path):
    out = same(app, tmp_path, "grep Seccomp: /proc/self/status", {"defaultAction": ""})
    assert out == "Seccomp:\t0\n"


PROBE_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long nr = strtol(argv[i], 0, 0);
        errno = 0;
        long r = syscall(nr, -1L, 0L, 0L, 0L, 0L, 0L);
        printf("%ld: %s\n", nr, r < 0 ? strerror(errno) : "ok");
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A static program that makes the syscalls named by number on its command line."""
    require_tools("gcc")
    import subprocess
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE_C)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "probe"), str(d / "probe.c")], check=True)
    return str(d)


def test_newer_syscalls_get_enosys_like_runc(app, tmp_path, probe):
    """runc puts an -ENOSYS stub before a deny-by-default filter: a syscall newer than any the
    profile names (clone3 435, faccessat2 439, rseq 334 against statx 332 here) fails with
    ENOSYS, so glibc falls back to clone/faccessat instead of failing with EPERM. Older
    unlisted ones (chroot 161) still get the default action, listed ones run."""
    def mount(c):
        c["mounts"].append({"destination": "/read", "type": "bind", "source": probe, "options": ["bind", "ro"]})
    args = ["435", "439", "334", "161", "332", "0x40000200"]  # ... x32 clone3: ENOSYS in x32 mode
    bundle_edit = lambda c: (mount(c), c["process"].update(args=["/read/probe"] + args))  # noqa: E731
    res = run_both(app, tmp_path, "", RUNTIME_TOOLS_DEFAULT, bundle_edit)
    assert res["runc"].returncode == 0, res["runc"].stderr
    assert (res["smith"].returncode, res["smith"].stdout) == (0, res["runc"].stdout), res["smith"].stderr
    assert res["smith"].stdout.splitlines() == [
        "435: Function not implemented", "439: Function not implemented", "334: Function not implemented",
        "161: Operation not permitted", "332: Bad address", "1073742336: Function not implemented"]
    # an allow-by-default profile gets no stub (as runc): the listed errno is what comes back
    allow = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    res = run_both(app, tmp_path, "", allow, lambda c: (mount(c), c["process"].update(args=["/read/probe", "435", "83"])))
    assert (res["smith"].returncode, res["smith"].stdout) == (0, res["runc"].stdout), res["smith"].stderr
    assert res["smith"].stdout == "435: Invalid argument\n83: Operation not permitted\n"  # clone3 ran (size 0)
