"""Tests of a multi-platform image run once per platform: natively for the host's, through qemu
(smith.launch.emulation) for the others. A platform that cannot run here is a SKIP line with its
reason; the exit status is 1 if any platform failed, SKIP_EXIT if none failed but one was skipped
(the Pants rules report that as skipped, never as passed), 0 if every platform passed."""
import argparse
from typing import Callable, List, Optional, TextIO, Tuple

from smith.errors import SmithError
from smith.launch import emulation
from smith.oci.image_source import image_platforms, split_ref
from smith.registry.platforms import Platform, host_platform, parse_platform, same_platform
from smith.text import printable

SKIP_EXIT = 77  # automake's "skipped"


def add_options(p: argparse.ArgumentParser, many: bool) -> None:
    if many:
        p.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]",
                       help="test only this platform of an index image; repeatable (default: "
                            "every platform of the image)")
    else:
        p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                       help="the platform of an index image to run (default: the host's)")
    p.add_argument("--emulation", choices=emulation.MODES, default="install",
                   help="how foreign platforms run: install (install and register Debian's "
                        "qemu-user-static the first time one is needed; default), registered "
                        "(only an existing binfmt_misc registration with the F flag), off")


def _parse(text: str) -> Platform:
    try:
        return parse_platform(text)
    except SmithError as e:
        raise SmithError("--platform: %s" % e)


def selected(layout: str, wanted: List[str]) -> Tuple[List[Optional[Platform]], List[str]]:
    """(the image's platforms, or those of `wanted` it has; SKIP lines for those it lacks): a
    repository-wide `--platform linux/arm64` skips, and says so, the images built for amd64 only."""
    have = image_platforms(*split_ref(layout))
    if not wanted:
        return have, []
    chosen: List[Optional[Platform]] = []
    lacking = []
    for w in map(_parse, wanted):
        match = [p for p in have if p is not None and _loose(p, w)]
        if match:
            chosen.append(match[0])
        else:
            lacking.append("SKIP %s: the image has no %s image; it offers %s" % (
                shown(w), shown(w), ", ".join(shown(p) for p in have if p) or "one image of no platform"))
    return chosen, lacking


def _loose(have: Platform, wanted: Platform) -> bool:
    if (have.os, have.architecture) != (wanted.os, wanted.architecture):
        return False
    return not have.variant or not wanted.variant or same_platform(have, wanted)


def shown(platform: Platform) -> str:
    """A platform as printed: an image's index names it, so its words are escaped."""
    return printable(str(platform), 200)


def label(platform: Optional[Platform], platforms: List[Optional[Platform]]) -> str:
    """How a result names its platform: "" for a single host image (output as before)."""
    if platform is None or (len(platforms) == 1 and emulation.native(platform)):
        return ""
    return "%s (%s)" % (shown(platform), printable(emulation.description(platform), 200))


def run_all(platforms: List[Optional[Platform]], mode: Optional[str], out: TextIO,
            run_one: Callable[[Optional[Platform], str], int], lacking: List[str] = ()) -> int:
    """run_one(platform, label) per platform that can run (mode None: nothing runs, no
    emulation needed); SKIP lines for the others and for `lacking` (see selected)."""
    failed, skipped = [], []
    for line in lacking:
        print(line, file=out)
        skipped.append(line[len("SKIP "):])
    for platform in platforms:
        name = label(platform, platforms)
        reason = emulation.prepare(platform, mode) if mode is not None else None
        if reason is not None:
            reason = printable(reason, 1000)  # it may quote the platform's words; one line
            print("SKIP %s: %s" % (shown(platform), reason), file=out)
            skipped.append("%s (%s)" % (shown(platform), reason))
            continue
        if run_one(platform, name) != 0:
            failed.append(str(platform))
    out.flush()
    if failed:
        return 1
    if skipped:
        print("SKIPPED %d of %d platforms, so this test did not pass: %s"
              % (len(skipped), len(platforms) + len(lacking), "; ".join(skipped)), file=out)
        return SKIP_EXIT
    return 0


def run_platform(layout: str, wanted: Optional[str], mode: str) -> Optional[Platform]:
    """The one platform `run` starts (default: the host's, or the image's only one); an error
    if it cannot run here."""
    have = image_platforms(*split_ref(layout))
    if wanted:
        platform: Optional[Platform] = _parse(wanted)
    elif len(have) == 1:
        platform = have[0]
    else:
        platform = host_platform()
    reason = emulation.prepare(platform, mode)
    if reason is not None:
        raise SmithError("cannot run the %s image here: %s" % (platform, reason))
    return platform
