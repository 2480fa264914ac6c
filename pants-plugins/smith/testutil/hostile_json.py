"""JSON files that a reader of untrusted JSON (smith.safe_json) must refuse with a clear error.

Each reader's test feeds these in place of the file it reads, with the shape the reader expects
spoiled in one way at a time: not JSON, nested too deeply, larger than the reader's cap (a valid
document padded with whitespace, so only the cap refuses it), wrong types.
"""
import json

NOT_JSON = b"\xff\xfe{ this is not JSON"
NOT_JSON_MESSAGE = "not valid JSON"
DEEP_MESSAGE = "JSON nested too deeply"


def deeply_nested(depth: int = 5000) -> bytes:
    """A JSON object nested `depth` levels (far past the parser's recursion limit), ~6 bytes a level."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def padded(document: object, max_bytes: int) -> bytes:
    """`document` as JSON followed by whitespace up to one byte more than `max_bytes`: valid, but too big."""
    data = json.dumps(document).encode()
    return data + b" " * (max_bytes + 1 - len(data))


def oversized_message(max_bytes: int) -> str:
    return "more than the %d allowed" % max_bytes
