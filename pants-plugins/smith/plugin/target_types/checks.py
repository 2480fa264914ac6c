"""Value checks shared by field types: registry names, tags and the `user` format."""
import re
from typing import Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException

# host[:port]/path as the registry client accepts it; no tag, no digest (those have their own fields).
REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")

DEFAULT_USER = "smith:10:10"


def check(cls, value: Optional[str], address: Address, pattern, what: str) -> Optional[str]:
    if value is not None and not pattern.match(value):
        raise InvalidFieldException(f"The `{cls.alias}` field of {address}: {value!r} is not {what}.")
    return value


def parse_user(value: str, alias: str, address: Address) -> Tuple[str, int, int]:
    """`user` is `NAME:UID:GID` on every smith target; `UID:GID` is accepted (NAME = smith)."""
    parts = value.split(":")
    if len(parts) == 2:
        parts = ["smith", *parts]
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or not _NAME.match(parts[0]):
        raise InvalidFieldException(
            f"The `{alias}` field of {address}: {value!r} is not `NAME:UID:GID` (e.g. `smith:10:10`; "
            "`UID:GID` alone means the name `smith`)."
        )
    return parts[0], int(parts[1]), int(parts[2])
