"""Pick the manifest for one platform (`os/arch[/variant]`) out of an index."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import os
from collections import namedtuple

from smith.errors import SmithError
from smith.text import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

# Variants an index may leave out because they are the architecture's default.
DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


class Platform(namedtuple("Platform", "os architecture variant")):
    """os and architecture: str; variant: str or None."""
    __slots__ = ()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def parse_platform(text: str) -> Platform:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SmithError("platform %r: write os/arch or os/arch/variant, e.g. linux/amd64" % text)
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def _variant(arch: str, variant: Optional[str]) -> Optional[str]:
    return variant or DEFAULT_VARIANT.get(arch)


# uname -m -> the OCI architecture of the host (the platform run natively).
_HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
              "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> Platform:
    """The platform this machine runs natively (linux/amd64 on x86_64)."""
    machine = os.uname().machine
    arch = _HOST_ARCH.get(machine, machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else None)


def of_dict(p: dict) -> Platform:
    """A descriptor's (checked) `platform` object, or a config's os/architecture/variant."""
    return Platform(p.get("os") or "", p.get("architecture") or "", p.get("variant") or None)


def same_platform(a: Platform, b: Platform) -> bool:
    """os and architecture equal, and the variants equal once defaults are filled in."""
    return ((a.os, a.architecture) == (b.os, b.architecture)
            and _variant(a.architecture, a.variant) == _variant(b.architecture, b.variant))


def check_unique_platforms(manifests: List[dict], what: str) -> None:
    """An index that lists one platform twice is ambiguous: which image runs would depend on
    the reader. (Attestations listed as unknown/unknown do not count.)"""
    seen = {}
    for m in manifests:
        p = m.get("platform") or {}
        if not p or p.get("os") == "unknown":
            continue
        arch = p.get("architecture", "")
        key = str(Platform(p.get("os", ""), arch, _variant(arch, p.get("variant"))))
        if key in seen:
            raise SmithError("%s lists %s twice (%s and %s); which one is meant is ambiguous, "
                             "refusing" % (what, printable(key, 80), seen[key], m.get("digest")))
        seen[key] = m.get("digest")


def select_platform(manifests: List[dict], wanted: Platform, what: str) -> dict:
    """The descriptor for `wanted`; an exact variant match beats a missing variant."""
    exact, loose = [], []
    for m in manifests:
        p = m.get("platform") or {}
        if p.get("os") != wanted.os or p.get("architecture") != wanted.architecture:
            continue
        have = _variant(p.get("architecture", ""), p.get("variant"))
        want = _variant(wanted.architecture, wanted.variant)
        if have == want:
            exact.append(m)
        elif want is None or (wanted.variant is None and have is None):
            loose.append(m)
    if exact or loose:
        return (exact or loose)[0]
    offered = sorted({printable(str(Platform((m.get("platform") or {}).get("os", "?"),
                                             (m.get("platform") or {}).get("architecture", "?"),
                                             (m.get("platform") or {}).get("variant"))), 60)
                      for m in manifests})
    more = ", ... (%d in all)" % len(offered) if len(offered) > 20 else ""
    raise SmithError("%s has no image for %s; it offers %s%s; pass --platform with one of them"
                     % (what, wanted, ", ".join(offered[:20]) or "nothing", more))
