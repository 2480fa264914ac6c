"""Parse `REGISTRY/REPO[:TAG][@sha256:...]` and `LAYOUT_DIR[:REF]` arguments."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import os
import re
from collections import namedtuple

from smith.errors import SmithError
from smith.registry.digests import is_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

# The distribution spec's grammar for repository path components, tags and digests.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class Reference(namedtuple("Reference", "registry repository tag digest")):
    """registry: host[:port] as written by the user (docker.io for Docker Hub); repository: the
    path inside the registry, e.g. "library/debian"; tag and digest: str or None."""
    __slots__ = ()

    @property
    def api_host(self) -> str:
        """The host:port the HTTP requests go to."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        text = "%s/%s" % (self.registry, self.repository)
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


def check_digest(digest: str, what: str) -> str:
    if not is_digest(digest):
        raise SmithError("%s: %r is not a digest; write sha256: followed by 64 lowercase hex digits"
                         % (what, digest))
    return digest


def check_tag(tag: str, what: str) -> str:
    if not _TAG.match(tag):
        raise SmithError("%s: %r is not a valid tag (letters, digits, '_', '.', '-'; at most 128)"
                         % (what, tag))
    return tag


def parse_reference(text: str) -> Reference:
    """`host[:port]/path[:tag][@digest]`; a first component without '.' or ':' means Docker Hub."""
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        check_digest(digest, "image reference %r" % text)
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        check_tag(tag, "image reference %r" % text)
    first, _, path = rest.partition("/")
    if path and ("." in first or ":" in first or first == "localhost"):
        registry = first
    else:
        registry, path = DOCKER_HUB, rest
        if "/" not in path:
            path = "library/" + path
    if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
        raise SmithError("image reference %r: repository %r must be lowercase path components "
                         "like 'host:5000/team/app'" % (text, path))
    return Reference(registry, path, tag, digest)


def parse_layout_arg(text: str) -> Tuple[str, Optional[str]]:
    """`LAYOUT_DIR[:REF]`: an existing directory wins over a ':' inside its own name."""
    if os.path.isdir(text) or ":" not in os.path.basename(text):
        return text, None
    path, ref = text.rsplit(":", 1)
    return path, (ref or None)
