"""The compiled seccomp program cache: what it keeps is used, nothing else ever is.

Unit tests on bpfcache, then runs of the runtime: a profile change never reuses an entry, and
a forged entry that WOULD change the filter (it is used when it looks like the runtime's own)
is ignored when it is not owned by the runtime's user or is damaged.
"""
import os

import pytest

from smith.runtime import bpfcache
from smith.testutil.seccomp_profiles import RUNTIME_TOOLS_DEFAULT
from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools

KEY = bpfcache.key(b"profile", b"lib", b"kernel")
CODE = bytes(range(64))  # 8 sock_filter instructions


def _path(root):
    return os.path.join(str(root), bpfcache.DIR, KEY.hex())


def test_round_trip_and_keys(tmp_path):
    bpfcache.store(str(tmp_path), KEY, CODE)
    assert bpfcache.load(str(tmp_path), KEY) == CODE
    assert bpfcache.load(str(tmp_path), bpfcache.key(b"profile2", b"lib", b"kernel")) is None
    assert os.stat(_path(tmp_path)).st_mode & 0o777 == 0o600
    assert os.listdir(os.path.join(str(tmp_path), bpfcache.DIR)) == [KEY.hex()]  # no temporary left


def _tamper(root, how, tmp_path):
    entry = _path(root)
    good = open(entry, "rb").read()
    if how == "symlinked entry":
        os.rename(entry, str(tmp_path / "elsewhere"))
        os.symlink(str(tmp_path / "elsewhere"), entry)
    elif how == "symlinked directory":
        os.rename(os.path.dirname(entry), str(tmp_path / "otherdir"))
        os.symlink(str(tmp_path / "otherdir"), os.path.dirname(entry))
    elif how == "entry of another owner":
        os.chown(entry, 1234, 1234)
    elif how == "directory of another owner":
        os.chown(os.path.dirname(entry), 1234, 1234)
    elif how == "group-writable entry":
        os.chmod(entry, 0o660)
    elif how == "world-writable directory":
        os.chmod(os.path.dirname(entry), 0o777)
    elif how == "corrupted":
        with open(entry, "r+b") as f:
            f.seek(len(good) - 40)
            f.write(b"\xff")
    elif how == "truncated":
        os.truncate(entry, len(good) - 8)
    elif how == "a fifo":
        os.unlink(entry)
        os.mkfifo(entry, 0o600)
    elif how == "another key's entry":
        other = bpfcache.key(b"other")
        bpfcache.store(root, other, CODE)
        os.rename(os.path.join(os.path.dirname(entry), other.hex()), entry)
    elif how == "oversized":
        with open(entry, "ab") as f:
            f.write(bytes(bpfcache.MAX_CODE + 100))


HOSTILE = ["symlinked entry", "symlinked directory", "entry of another owner", "directory of another owner",
           "group-writable entry", "world-writable directory", "corrupted", "truncated", "a fifo",
           "another key's entry", "oversized"]


@pytest.mark.parametrize("how", HOSTILE)
def test_hostile_entries_are_never_trusted(tmp_path, how):
    root = str(tmp_path / "root")
    os.mkdir(root, 0o700)
    bpfcache.store(root, KEY, CODE)
    _tamper(root, how, tmp_path)
    assert bpfcache.load(root, KEY) is None
    # storing again never writes through a link: a followed symlink would change these
    bpfcache.store(root, KEY, CODE)
    if how == "symlinked entry":
        assert open(str(tmp_path / "elsewhere"), "rb").read().startswith(bpfcache.FORMAT)
        assert bpfcache.load(root, KEY) == CODE  # the link itself was replaced by a real entry
    if how in ("corrupted", "truncated", "a fifo", "another key's entry", "oversized"):
        assert bpfcache.load(root, KEY) == CODE  # a bad entry is replaced


# Runs of the runtime: mkdir is allowed by RUNTIME_TOOLS_DEFAULT and refused by NO_MKDIR.
NO_MKDIR = dict(RUNTIME_TOOLS_DEFAULT, syscalls=[
    dict(rule, names=[n for n in rule["names"] if n not in ("mkdir", "mkdirat")])
    for rule in RUNTIME_TOOLS_DEFAULT["syscalls"]])
SCRIPT = "mkdir /tmp/d 2>/dev/null && echo made || echo refused"


@pytest.fixture(scope="module")
def app():
    require_tools("busybox")
    return tb.cached_zipapp()


def _run(app, tmp_path, root, profile):
    def configure(c):
        c["linux"]["seccomp"] = profile
        c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", SCRIPT], edit=configure)
    res = tb.runtime(app, root, "run", "bpf-%d" % os.getpid(), cwd=bundle)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _entries(root):
    d = os.path.join(root, bpfcache.DIR)
    return {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)}


def test_profile_change_never_reuses_and_forged_entries_are_ignored(app, tmp_path):
    root = str(tmp_path / "root")
    assert _run(app, tmp_path, root, RUNTIME_TOOLS_DEFAULT) == "made"
    allow = _entries(root)
    assert _run(app, tmp_path, root, RUNTIME_TOOLS_DEFAULT) == "made"  # served from the cache
    assert _entries(root) == allow
    assert _run(app, tmp_path, root, NO_MKDIR) == "refused"  # another profile: its own entry
    entries = _entries(root)
    (no_mkdir_key,) = set(entries) - set(allow)
    # Forge NO_MKDIR's entry with the program of the profile that allows mkdir: a valid entry
    # of the runtime's own user IS used (so the forgery works), anything less is not.
    (allow_entry,) = allow.values()
    head = len(bpfcache.FORMAT) + 32 + 4
    forged = bpfcache._entry(bytes.fromhex(no_mkdir_key), allow_entry[head:-32])
    path = os.path.join(root, bpfcache.DIR, no_mkdir_key)
    for owner, expected in ((1234, "refused"), (0, "made")):
        with open(path, "wb") as f:
            f.write(forged)
        os.chown(path, owner, owner)
        os.chmod(path, 0o600)
        assert _run(app, tmp_path, root, NO_MKDIR) == expected, owner
    with open(path, "wb") as f:
        f.write(forged[:-1] + bytes([forged[-1] ^ 1]))  # its checksum broken
    assert _run(app, tmp_path, root, NO_MKDIR) == "refused"
    assert _entries(root)[no_mkdir_key] == entries[no_mkdir_key]  # compiled again, written back
