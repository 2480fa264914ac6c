"""JSON from strangers (manifests, indexes, configs, lockfiles, registry answers): bounded in size
and nesting, and only the shape the caller asked for, so malformed input is a SmithError that names
the input, never a RecursionError / AttributeError traceback.

The C scanner behind `json` guards its recursion with the interpreter's recursion limit and raises
RecursionError past it; that is the nesting cap (~1000 levels, far beyond any real document), caught
here and turned into an error. Sizes are checked before parsing.
"""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import json

from smith.errors import SmithError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

MAX_JSON_BYTES = 4 << 20  # a manifest, index or config larger than this is refused


def loads(data: Union[bytes, str], what: str, max_bytes: int = MAX_JSON_BYTES, expect: Optional[type] = dict) -> Any:
    """Parse `data` (named `what` in errors); `expect` is the type the top level must have."""
    if len(data) > max_bytes:
        raise SmithError("%s: %d bytes of JSON, more than the %d allowed" % (what, len(data), max_bytes))
    try:
        value = json.loads(data)
    except RecursionError:
        raise SmithError("%s: JSON nested too deeply" % what) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise SmithError("%s: not valid JSON (%s)" % (what, e)) from None
    if expect is not None and not isinstance(value, expect):
        raise SmithError("%s: expected a JSON %s, found %s" % (what, _kind(expect), _kind(type(value))))
    return value


def load_file(path: str, what: Optional[str] = None, max_bytes: int = MAX_JSON_BYTES,
              expect: Optional[type] = dict) -> Any:
    """Read and parse a JSON file, refusing one larger than `max_bytes` without reading it all."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise SmithError("%s: cannot read (%s)" % (what or path, e.strerror or e)) from None
    return loads(data, what or path, max_bytes, expect)


def field(obj: dict, key: str, kind: type, what: str, required: bool = True) -> Any:
    """obj[key] checked to be a `kind`: a clear error for a missing or wrongly typed field."""
    if key not in obj or obj[key] is None:
        if required:
            raise SmithError("%s: the field %r is missing" % (what, key))
        return None
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SmithError("%s: the field %r must be a JSON %s, not %s" % (what, key, _kind(kind), _kind(type(value))))
    return value


def _kind(t: type) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number",
            bool: "boolean", type(None): "null"}.get(t, t.__name__)
