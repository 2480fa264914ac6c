"""each_platform's output names platforms an image's index gives: escaped (no image, emulator
or container needed; the runs themselves are multiplatform_test's)."""
import io

from smith.launch import each_platform
from smith.launch.each_platform import SKIP_EXIT
from smith.registry.platforms import Platform

EVIL = Platform("linux", "arm\x1b]2;owned\x07", None)  # an OSC: sets the terminal's title
SHOWN = "linux/arm\\x1b]2;owned\\x07"


def test_a_platform_named_by_the_image_is_printed_escaped():
    """SKIP lines, the SKIPPED summary and result labels quote the platform (and a reason
    quoting it): the OSC reached the terminal as is before."""
    out = io.StringIO()
    assert each_platform.run_all([EVIL], "install", out, lambda p, label: 0) == SKIP_EXIT
    assert out.getvalue() == (
        "SKIP %s: no qemu-user emulator runs %s images\n"
        "SKIPPED 1 of 1 platforms, so this test did not pass: %s (no qemu-user emulator runs %s images)\n"
        % (SHOWN, SHOWN, SHOWN, SHOWN)), out.getvalue()
    assert each_platform.label(EVIL, [EVIL]) == "%s (qemu-arm\\x1b]2;owned\\x07)" % SHOWN
