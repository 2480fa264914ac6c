"""--nss: the NSS modules the root has, plus passwd/group/nsswitch.conf that glibc really reads."""
import os
import subprocess
import sys
import tarfile

import pytest

import smith
from smith.elf.nss import nss_files, parse_user, User
from smith.errors import SmithError
from smith.testutil.debian import require_tools, tool_env

HOST_LIBDIR = "/usr/lib/x86_64-linux-gnu"


def _smith(args, cwd):
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    return subprocess.run([sys.executable, "-m", "smith", "closure", *args], env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_getent_in_the_closure_finds_the_image_user(tmp_path) -> None:
    require_tools("getent", "chroot")
    out = str(tmp_path / "nss.tar")
    proc = _smith(["--root", "/", "/usr/bin/getent", "--nss", "--user", "web:33:44", "--output-tar", out],
                  str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.splitlines()
    for module in ("libnss_files.so.2", "libnss_dns.so.2"):  # whatever this root ships
        host_has = os.path.exists(os.path.join(HOST_LIBDIR, module))
        assert (HOST_LIBDIR + "/" + module in listed) == host_has
    assert "/etc/passwd" not in listed  # generated, so only in the tar
    rootfs = tmp_path / "rootfs"
    with tarfile.open(out) as t:
        t.extractall(str(rootfs), numeric_owner=True)
    assert sorted(os.listdir(str(rootfs / "etc"))) == ["group", "nsswitch.conf", "passwd"]

    def getent(*args):
        return subprocess.run(["chroot", str(rootfs), "/usr/bin/getent", *args], env=tool_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    assert getent("passwd", "web").stdout == "web:x:33:44:web:/write:/sbin/nologin\n"
    assert getent("passwd", "33").stdout.startswith("web:x:33:44:")
    assert getent("group", "44").stdout == "web:x:44:\n"
    assert getent("passwd", "0").stdout.startswith("root:x:0:0:")
    assert getent("passwd", "nobody").returncode == 2  # only what we wrote exists


def test_user_option_is_checked() -> None:
    assert parse_user("smith:10:10") == User("smith", 10, 10)
    for bad in ("smith", "smith:10", "Smith:1:1", "a:b:c", "x:1:1:1"):
        with pytest.raises(SmithError, match="NAME:UID:GID"):
            parse_user(bad)
    root_only = nss_files(User("root", 0, 0))
    assert root_only["/etc/passwd"].decode().count("\n") == 1  # no duplicate root line


def test_user_without_nss_is_an_error(tmp_path) -> None:
    proc = _smith(["--root", "/", "/usr/bin/getent", "--user", "a:1:1"], str(tmp_path))
    assert proc.returncode == 1 and "--user only makes sense with --nss" in proc.stderr
