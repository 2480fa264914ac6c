"""Parse `WWW-Authenticate` challenges (RFC 7235) such as
`Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull,push"`."""
import re
from typing import Dict, List, NamedTuple

_SCHEME = re.compile(r'\s*([A-Za-z][A-Za-z0-9!#$%&\'*+.^_`|~-]*)\s*')
_PARAM = re.compile(r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*'
                    r'(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(,?)')


class Challenge(NamedTuple):
    scheme: str  # lower case: "basic" or "bearer"
    params: Dict[str, str]  # parameter names in lower case


def parse_challenges(header: str) -> List[Challenge]:
    """All challenges in one header value; unknown schemes are kept, garbage is skipped."""
    challenges: List[Challenge] = []
    pos = 0
    while pos < len(header):
        m = _SCHEME.match(header, pos)
        if not m:
            pos += 1
            continue
        scheme, pos = m.group(1).lower(), m.end()
        params: Dict[str, str] = {}
        while pos < len(header):
            p = _PARAM.match(header, pos)
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
