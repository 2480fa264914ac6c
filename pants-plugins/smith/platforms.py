"""Image platforms ("linux/amd64", "linux/arm64"): what each one means to the OCI index, the
package repositories and the ELF closure. Adding a platform is one row of PLATFORMS
(docs/platforms.md)."""
from typing import Dict, NamedTuple, Optional, Tuple

from smith.errors import SmithError

DEFAULT = "linux/amd64"


class Platform(NamedTuple):
    name: str  # "linux/arm64": what BUILD files and --platform say
    os: str
    architecture: str  # GOARCH, as in the image config and the index's `platform`
    variant: Optional[str]  # the OCI image-index spec's variant ("v8" for arm64)
    deb: str  # Debian's architecture name
    rpm: str  # rpm's
    machine: str  # the ELF e_machine its programs have (pyelftools' name)
    elfclass: str

    def oci(self) -> Dict[str, str]:
        """The `platform` object of an index entry (and the config's architecture/os/variant)."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def repo_arch(self, kind: str) -> str:
        return self.deb if kind == "deb" else self.rpm


PLATFORMS: Dict[str, Platform] = {
    "linux/amd64": Platform("linux/amd64", "linux", "amd64", None, "amd64", "x86_64", "EM_X86_64",
                            "ELFCLASS64"),
    "linux/arm64": Platform("linux/arm64", "linux", "arm64", "v8", "arm64", "aarch64", "EM_AARCH64",
                            "ELFCLASS64"),
}
# Architecture-independent packages: shared by every platform of a lockfile.
SHARED_ARCHES = ("all", "noarch")


def get(name: str, what: str = "platform") -> Platform:
    """A platform by name; "linux/arm64/v8" is accepted for "linux/arm64"."""
    for p in PLATFORMS.values():
        if name == p.name or (p.variant and name == p.name + "/" + p.variant):
            return p
    raise SmithError("%s %r is not supported; use one of %s" % (what, name, ", ".join(PLATFORMS)))


def of_repo_arch(kind: str, arch: str) -> Optional[Platform]:
    for p in PLATFORMS.values():
        if p.repo_arch(kind) == arch:
            return p
    return None


def parse_list(names: Tuple[str, ...], what: str) -> Tuple[Platform, ...]:
    """Platforms in the order given; duplicates are an error."""
    out = []
    for n in names:
        p = get(n, what)
        if p in out:
            raise SmithError("%s lists %s twice" % (what, p.name))
        out.append(p)
    if not out:
        raise SmithError("%s is empty; give at least one platform, e.g. %s" % (what, DEFAULT))
    return tuple(out)


def suffix(name: str) -> str:
    """" (linux/arm64)" for descriptions; nothing for the default (its descriptions stay as they were)."""
    return "" if name == DEFAULT else " (%s)" % name
