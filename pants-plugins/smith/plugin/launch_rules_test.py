"""How test rules report the launcher's outcome: its SKIP_EXIT (a platform could not run here)
is neither passed nor failed but a result without exit code plus a warning with the reason;
[smith-test] options become the launcher's platform options."""
import logging

from pants.core.goals.test import ShowOutput
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, EMPTY_FILE_DIGEST
from pants.engine.process import FallibleProcessResult
from pants.testutil.option_util import create_subsystem

from smith.launch.each_platform import SKIP_EXIT
from smith.plugin.rules.util.launch import platform_options, launcher_test_result
from smith.plugin.subsystems import Emulation, SmithTestSubsystem

ADDRESS = Address("examples/hello", target_name="hello-test")
SKIPPED = (b"PASS linux/amd64 (native) dist/hello (exit 0)\n"
           b"SKIP linux/arm64/v8: emulation of foreign platforms is off (--emulation off)\n"
           b"SKIPPED 1 of 2 platforms, so this test did not pass: ...\n")


def result(code: int, stdout: bytes) -> FallibleProcessResult:
    return FallibleProcessResult(stdout, EMPTY_FILE_DIGEST, b"", EMPTY_FILE_DIGEST, code, EMPTY_DIGEST,
                                 None)  # type: ignore[arg-type]


def test_a_skipped_platform_is_no_pass(caplog):
    with caplog.at_level(logging.WARNING):
        skipped = launcher_test_result(result(SKIP_EXIT, SKIPPED), ADDRESS, ShowOutput.ALL)
    assert skipped.exit_code is None  # Pants 2.17: not counted as passed nor failed
    assert "SKIP linux/arm64/v8: emulation of foreign platforms is off" in skipped.stdout
    assert ("examples/hello:hello-test SKIPPED (not passed):\nPASS linux/amd64 (native) dist/hello "
            "(exit 0)\nSKIP linux/arm64/v8: emulation of foreign platforms is off") in caplog.text
    assert launcher_test_result(result(0, b"PASS x\n"), ADDRESS, ShowOutput.ALL).exit_code == 0
    assert launcher_test_result(result(1, b"FAIL x\n"), ADDRESS, ShowOutput.ALL).exit_code == 1


def test_options_become_launcher_arguments():
    s = create_subsystem(SmithTestSubsystem, emulation=Emulation.off, platforms=["linux/arm64", "linux/amd64"],
                         run_platform="linux/arm64", store="/var/lib/smith", runtime="", run_network="none")
    assert platform_options(s, many=True) == ["--emulation", "off", "--platform", "linux/arm64",
                                              "--platform", "linux/amd64"]
    assert platform_options(s, many=False) == ["--emulation", "off", "--platform", "linux/arm64"]
    default = create_subsystem(SmithTestSubsystem, emulation=Emulation.install, platforms=[], run_platform="")
    assert platform_options(default, many=False) == ["--emulation", "install"]


def test_the_skip_warning_is_escaped(caplog):
    """The warning quotes SKIP/PASS lines of the launcher's stdout, which a container's output
    shares: a line of that with an OSC reached the terminal as is before."""
    with caplog.at_level(logging.WARNING):
        launcher_test_result(result(SKIP_EXIT, SKIPPED + b"SKIP \x1b]2;owned\x07\n"), ADDRESS, ShowOutput.ALL)
    assert "\nSKIP \\x1b]2;owned\\x07" in caplog.text and "\x1b" not in caplog.text, caplog.text
