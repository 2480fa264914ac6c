"""Minimal /etc/passwd, /etc/group and /etc/nsswitch.conf for a microcontainer's one user."""
import re
from typing import Dict, NamedTuple

from smith.errors import SmithError

_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


class User(NamedTuple):
    name: str
    uid: int
    gid: int


DEFAULT_USER = User("smith", 10, 10)


def parse_user(text: str) -> User:
    """NAME:UID:GID, as given to --user."""
    parts = text.split(":")
    if len(parts) != 3 or not _NAME.match(parts[0]) or not parts[1].isdigit() or not parts[2].isdigit():
        raise SmithError("--user %r must be NAME:UID:GID, e.g. smith:10:10 (lower-case name, numeric ids)" % text)
    return User(parts[0], int(parts[1]), int(parts[2]))


def nss_files(user: User) -> Dict[str, bytes]:
    """The generated files, by absolute path. No shell exists in the image, hence /sbin/nologin."""
    passwd = ["root:x:0:0:root:/:/sbin/nologin"]
    group = ["root:x:0:"]
    if user.uid != 0:
        passwd.append("%s:x:%d:%d:%s:/write:/sbin/nologin" % (user.name, user.uid, user.gid, user.name))
    if user.gid != 0:
        group.append("%s:x:%d:" % (user.name, user.gid))
    nsswitch = ["passwd: files", "group: files", "shadow: files", "hosts: files dns",
                "networks: files", "protocols: files", "services: files"]
    return {
        "/etc/passwd": ("\n".join(passwd) + "\n").encode(),
        "/etc/group": ("\n".join(group) + "\n").encode(),
        "/etc/nsswitch.conf": ("\n".join(nsswitch) + "\n").encode(),
    }
