"""A two-platform image (Debian's busybox-static for linux/amd64 and linux/arm64): smoke, service
and structure tests run every platform, the host's natively and arm64 through qemu-user-static
(installed and registered with the F flag by the launcher itself), each result named by its
platform; where a platform cannot run, the test says SKIP with the reason and never passes."""
import json
import os
import subprocess

import pytest

from smith.launch import emulation
from smith.launch.each_platform import SKIP_EXIT
from smith.registry.platforms import parse_platform
from smith.testutil.debian import require_tools
from smith.testutil.launch import launch_cmd, smith_env
from smith.testutil.qemu import busybox_index, require_emulation

pytestmark = pytest.mark.debian_mirror
BB = "/bin/busybox"
ARM64 = "linux/arm64/v8 (qemu-aarch64)"
AMD64 = "linux/amd64 (native)"


@pytest.fixture(scope="module")
def layout():
    require_tools("runc")
    require_emulation("linux/arm64")
    return busybox_index()


def launch(*argv, timeout=300):
    return subprocess.run(launch_cmd(*argv), env=smith_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def test_every_platform_runs_and_is_named(layout, store):
    """No --platform: both images run; busybox reports the machine it believes it runs on."""
    proc = launch("test", "--layout", layout, "--store", store, "--expect-stdout", "^(x86_64|aarch64)$")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["PASS %s %s (exit 0)" % (AMD64, layout),
                                        "PASS %s %s (exit 0)" % (ARM64, layout)]


@pytest.mark.parametrize("platform,machine", [("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")])
def test_each_platform_runs_its_own_program(layout, store, platform, machine):
    proc = launch("test", "--layout", layout, "--store", store, "--platform", platform,
                  "--expect-stdout", "^%s$" % machine)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    other = launch("test", "--layout", layout, "--store", store, "--platform", platform,
                   "--expect-stdout", "^%s$" % ("x86_64" if machine == "aarch64" else "aarch64"))
    assert other.returncode == 1 and "----- container stdout (%d bytes) -----\n%s\n" % (
        len(machine) + 1, machine) in other.stdout, other.stdout + other.stderr


def test_run_picks_the_host_platform_or_the_one_asked_for(layout, store):
    host = launch("run", "--layout", layout, "--store", store)
    arm = launch("run", "--layout", layout, "--store", store, "--platform", "linux/arm64",
                 "--", "uname", "-m")
    assert (host.returncode, host.stdout, arm.returncode, arm.stdout) == (0, "x86_64\n", 0, "aarch64\n")
    missing = launch("run", "--layout", layout, "--store", store, "--platform", "linux/s390x")
    assert missing.returncode == 1
    assert "no linux/s390x image in the index; it offers linux/amd64, linux/arm64/v8" in missing.stderr


def test_service_test_runs_each_platform_with_its_client(layout, store, tmp_path):
    spec = {"name": "mp", "layout": layout, "ready_port": 7000,
            "command": [BB, "sh", "-c", "echo starting; trap 'exit 3' TERM; "
                                           "busybox nc -ll -p 7000 -e busybox uname -m & wait"],
            "tcp_checks": [{"send": "?\n", "expect": "^(x86_64|aarch64)\n", "port": 7000}],
            "client": {"layout": layout, "command": [BB, "uname", "-m"],
                       "expect_stdout": "^(x86_64|aarch64)$"},
            "expect_stop_exit": 3}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    proc = launch("service", "--spec", str(path), "--store", store)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    amd, arm = text.index("PASS mp %s in " % AMD64), text.index("PASS mp %s in " % ARM64)
    assert "received b'x86_64\\n'" in text[amd:arm] and "stdout b'x86_64\\n'" in text[amd:arm], text
    assert "received b'aarch64\\n'" in text[arm:] and "stdout b'aarch64\\n'" in text[arm:], text


def test_structure_test_checks_every_platform(layout, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"name": "mp", "layout": layout, "paths_present": ["/bin/busybox"]}))
    proc = launch("structure", "--spec", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == [
        "PASS mp linux/amd64", "PASS mp linux/arm64/v8"]


def test_without_emulation_the_foreign_platform_is_skipped_not_passed(layout, store):
    proc = launch("test", "--layout", layout, "--store", store, "--emulation", "off")
    assert proc.returncode == SKIP_EXIT, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "PASS %s %s (exit 0)" % (AMD64, layout),
        "SKIP linux/arm64/v8: emulation of foreign platforms is off (--emulation off)",
        "SKIPPED 1 of 2 platforms, so this test did not pass: linux/arm64/v8 (emulation of "
        "foreign platforms is off (--emulation off))"]


# -- emulation.prepare on binfmt_misc directories that stand for other machines ------------------

def fake_binfmt(tmp_path, entries=(), status="enabled"):
    d = tmp_path / "binfmt"
    d.mkdir()
    (d / "register").write_text("")
    (d / "status").write_text(status + "\n")
    for name, flags in entries:
        (d / name).write_text("enabled\ninterpreter /usr/bin/%s-static\nflags: %s\noffset 0\n"
                              "magic 7f454c46\n" % (name, flags))
    return str(d)


ARM = parse_platform("linux/arm64")


def test_a_registration_without_F_is_reported_and_left_alone(tmp_path):
    d = fake_binfmt(tmp_path, [("qemu-aarch64", "OC")])
    reason = emulation.prepare(ARM, "install", binfmt=d)
    assert reason.startswith("the binfmt_misc entry qemu-aarch64 runs /usr/bin/qemu-aarch64-static "
                             "without the F flag (flags: OC)")
    assert (tmp_path / "binfmt" / "register").read_text() == ""  # nothing written


def test_a_registration_with_F_is_reused(tmp_path):
    assert emulation.prepare(ARM, "registered", binfmt=fake_binfmt(tmp_path, [("qemu-aarch64", "POCF")])) is None


@pytest.mark.parametrize("case,want", [
    ("no binfmt_misc", "binfmt_misc is not mounted at"),
    ("disabled", "binfmt_misc is disabled on this machine"),
    ("nothing registered", "no qemu-aarch64 is registered with binfmt_misc (--emulation registered)"),
])
def test_what_makes_a_foreign_platform_impossible_is_said(tmp_path, case, want):
    if case == "no binfmt_misc":
        d = str(tmp_path)
    else:
        d = fake_binfmt(tmp_path, status="disabled" if case == "disabled" else "enabled")
    assert emulation.prepare(ARM, "registered", binfmt=d).startswith(want)


def test_native_and_impossible_platforms(monkeypatch):
    assert emulation.prepare(parse_platform("linux/amd64"), "off") is None
    assert emulation.prepare(parse_platform("windows/arm64")) == "no qemu-user emulator runs windows/arm64 images"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert emulation.prepare(ARM) == "registering qemu-aarch64 with binfmt_misc needs root"


def test_apt_unreachable_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    """No qemu installed and apt-get cannot run: the platform is skipped with that reason."""
    monkeypatch.setattr(emulation, "CONF", str(tmp_path / "none-%s.conf"))
    monkeypatch.setattr(emulation, "PATH", str(tmp_path / "empty-bin"))
    reason = emulation.prepare(ARM, "install", binfmt=fake_binfmt(tmp_path))
    assert reason.startswith("cannot run apt-get install ("), reason


def test_a_platform_the_image_lacks_is_skipped_for_it(layout, store, tmp_path):
    """A repository-wide --platform: images without it say so and do not pass."""
    proc = launch("test", "--layout", layout, "--store", store, "--platform", "linux/s390x")
    assert proc.returncode == SKIP_EXIT, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == ("SKIP linux/s390x: the image has no linux/s390x image; it "
                                           "offers linux/amd64, linux/arm64/v8")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"name": "mp", "layout": layout, "paths_present": ["/bin/busybox"]}))
    proc = launch("structure", "--spec", str(path), "--platform", "linux/arm64", "--platform", "linux/s390x")
    assert proc.returncode == SKIP_EXIT, proc.stdout + proc.stderr
    assert proc.stdout.startswith("SKIP linux/s390x: the image has no linux/s390x image")
    assert "\nPASS mp linux/arm64/v8: " in proc.stdout
