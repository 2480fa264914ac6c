"""The few URL operations a registry client needs, without urllib.parse (7 ms of a short push's
start-up): split, resolve a Location against the request URL, and form-encode query values."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

from collections import namedtuple
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Tuple, Union

# Never percent-encoded by urllib.parse.quote_plus (RFC 3986 unreserved).
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


Parts = namedtuple("Parts", "scheme netloc path query")
Parts.__doc__ = "A split URL: scheme (lower case), netloc, path, query (all str)."


def split(url: str) -> Parts:
    """Like urllib.parse.urlsplit for absolute http(s) URLs (the fragment is dropped)."""
    url = url.split("#", 1)[0]
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.isascii() or not scheme.isalpha():
        scheme, rest = "", url
    elif rest.startswith("/"):
        rest = ""  # "http:///x": no host at all
    netloc_end = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0] or [len(rest)])
    netloc, rest = rest[:netloc_end], rest[netloc_end:]
    path, _, query = rest.partition("?")
    return Parts(scheme.lower(), netloc, path, query)


def join(base: str, ref: str) -> str:
    """`ref` (a Location header) resolved against `base` (RFC 3986 5.2, enough of it)."""
    ref = ref.strip()
    head, sep, _ = ref.partition("://")
    if sep and head.isascii() and head.isalpha():
        return ref
    b = split(base)
    if ref.startswith("//"):
        return "%s:%s" % (b.scheme, ref)
    prefix = "%s://%s" % (b.scheme, b.netloc)
    if not ref:
        return base.split("#", 1)[0]
    if ref.startswith("?"):
        return prefix + b.path + (ref if ref != "?" else "")  # an empty query is none
    if ref.startswith("#"):
        return prefix + b.path + ("?" + b.query if b.query else "")
    path, qmark, query = ref.partition("?")
    if not path.startswith("/"):
        segments = ((b.path or "/").rsplit("/", 1)[0] + "/" + path).split("/")
        segments[1:-1] = [s for s in segments[1:-1] if s]  # "a//b" is "a/b", as for urllib
        path = "/".join(segments)
    return prefix + _remove_dots(path) + (qmark + query if query else "")


def _remove_dots(path: str) -> str:
    out = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/".join(out) if out and out[0] == "" else "/" + "/".join(out)


def quote_plus(value: str) -> str:
    return "".join(chr(c) if c in _SAFE else "+" if c == 32 else "%%%02X" % c
                   for c in value.encode("utf-8"))


def encode(params: Union[Mapping[str, str], Iterable[Tuple[str, str]]]) -> str:
    """Like urllib.parse.urlencode: key=value pairs joined by &, each percent-encoded."""
    items = params.items() if isinstance(params, Mapping) else params
    return "&".join("%s=%s" % (quote_plus(k), quote_plus(v)) for k, v in items)
