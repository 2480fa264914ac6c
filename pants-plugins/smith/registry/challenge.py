"""Parse `WWW-Authenticate` challenges (RFC 7235) such as
`Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull,push"`."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import re
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List

# Compiled at the first challenge (re caches them), not at every start: a registry without
# auth sends none.
_SCHEME = r'\s*([A-Za-z][A-Za-z0-9!#$%&\'*+.^_`|~-]*)\s*'
_PARAM = (r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*'
          r'(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(,?)')


Challenge = namedtuple("Challenge", "scheme params")
Challenge.__doc__ = """scheme: "basic" or "bearer" (lower case); params: {lower-case name: value}."""


def parse_challenges(header: str) -> List[Challenge]:
    """All challenges in one header value; unknown schemes are kept, garbage is skipped."""
    scheme_re, param_re = re.compile(_SCHEME), re.compile(_PARAM)
    challenges: List[Challenge] = []
    pos = 0
    while pos < len(header):
        m = scheme_re.match(header, pos)
        if not m:
            pos += 1
            continue
        scheme, pos = m.group(1).lower(), m.end()
        params: Dict[str, str] = {}
        while pos < len(header):
            p = param_re.match(header, pos)
            if not p:
                break
            value = p.group(2)
            value = re.sub(r"\\(.)", r"\1", value) if value is not None else p.group(3)
            params[p.group(1).lower()] = value
            pos = p.end()
            if not p.group(4):
                break
        challenges.append(Challenge(scheme, params))
        while pos < len(header) and header[pos] in ", ":
            pos += 1
    return challenges
