"""JSON load/dump through the C accelerator `_json`, without importing the `json` package.

`import json` pulls in `re` and `enum` (~6 ms at every container start); the C scanner and
encoder that json itself uses need neither. Strict JSON only (no NaN/Infinity).
"""
import sys

import _json


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        raise ValueError("%s is not valid JSON" % name)


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


MAX_DEPTH = 200  # arrays and objects inside each other; a runtime-spec config needs < 10


def _depth() -> int:
    f, n = sys._getframe(), 0
    while f is not None:
        f, n = f.f_back, n + 1
    return n


def loads(text, max_depth: int = MAX_DEPTH):
    """Parse one JSON document; ValueError says where it is malformed or that it is nested
    deeper than max_depth (the C scanner recurses once per level: a lowered recursion limit
    turns 100000 levels into a RecursionError, caught here, instead of a crash)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    i, n = 0, len(text)
    while i < n and text[i] in _WS:
        i += 1
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + max_depth + 10)
    try:
        value, end = _scan(text, i)
    except StopIteration as e:
        raise ValueError("invalid JSON at character %d" % e.value) from None
    except (RecursionError, SystemError):  # 3.11's scanner may lose the RecursionError (SystemError)
        raise ValueError("nested too deeply (more than %d levels of arrays and objects)" % max_depth) from None
    finally:
        sys.setrecursionlimit(limit)
        _Context.memo.clear()
    while end < n and text[end] in _WS:
        end += 1
    if end != n:
        raise ValueError("extra data at character %d" % end)
    return value


def _no_default(o):
    raise TypeError("%r is not JSON serializable" % (o,))


_encode = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None,
                             ":", ",", True, False, False)


def dumps(value):
    """Compact JSON with sorted keys."""
    return "".join(_encode(value, 0))
