"""JSON load/dump through the C accelerator `_json`, without importing the `json` package.

`import json` pulls in `re` and `enum` (~6 ms at every container start); the C scanner and
encoder that json itself uses need neither. Strict JSON only (no NaN/Infinity).
"""
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


def loads(text):
    """Parse one JSON document; ValueError says where it is malformed."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    i, n = 0, len(text)
    while i < n and text[i] in _WS:
        i += 1
    try:
        value, end = _scan(text, i)
    except StopIteration as e:
        raise ValueError("invalid JSON at character %d" % e.value) from None
    finally:
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
