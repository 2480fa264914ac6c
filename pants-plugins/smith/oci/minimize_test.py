"""`smith minimize` against a small "fat" image made of this machine's real programs."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

import smith
from smith.oci.unpack_test import tar_bytes, write_layout
from smith.testutil.debian import tool_env

HOST_FILES = ["/usr/bin/cat", "/usr/bin/ls", "/usr/lib/x86_64-linux-gnu/libc.so.6",
              "/usr/lib/x86_64-linux-gnu/libselinux.so.1", "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
              "/usr/lib64/ld-linux-x86-64.so.2", "/etc/debian_version"]
CONFIG = {"entrypoint": ["cat"], "cmd": ["/etc/debian_version"], "env": {"GREETING": "hi"},
          "workdir": "/srv", "labels": {"org.example.kind": "fat"}, "exposed_ports": ["8080/tcp"]}


def smith_cmd(*args, cwd):
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    return subprocess.run([sys.executable, "-m", "smith", *args], cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def fat(tmp_path_factory):
    """A merged-/usr root with cat, ls and their libraries, as an OCI layout and a docker archive."""
    tmp = tmp_path_factory.mktemp("fat")
    root = tmp / "root"
    for path in HOST_FILES:
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), str(dest))
    (root / "usr/share/doc/junk").mkdir(parents=True)
    (root / "usr/share/doc/junk/README").write_text("not needed\n")
    for link, target in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")]:
        os.symlink(target, str(root / link))
    (tmp / "cfg.json").write_text(json.dumps(CONFIG))
    ok(smith_cmd("layer", "--output", "layer", "--dir", "/=root", cwd=tmp))
    ok(smith_cmd("image", "--output", "layout", "--tag", "fat", "--config", "cfg.json",
                 "--no-skeleton", "--layer", "layer", "--docker-archive", "fat.docker.tar", cwd=tmp))
    return tmp


def members(tar_path):
    with tarfile.open(str(tar_path)) as t:
        return {m.name: m for m in t.getmembers()}


def test_minimize_keeps_the_closure_and_config_and_runs(fat, tmp_path):
    ok(smith_cmd("minimize", "--output", "tree.tar", "--config-out", "cfg.json",
                 "--path", "/etc/debian_version", str(fat / "layout") + ":fat", cwd=tmp_path))
    names = members(tmp_path / "tree.tar")
    assert {"usr/bin/cat", "lib64", "usr/lib64/ld-linux-x86-64.so.2",
            "usr/lib/x86_64-linux-gnu/libc.so.6", "etc/debian_version"} <= set(names)
    assert names["lib64"].issym() and names["lib64"].linkname == "usr/lib64"  # the ELF interpreter's path
    assert not [n for n in names if "ls" == os.path.basename(n) or "libselinux" in n or "doc" in n]
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["entrypoint"] == ["cat"] and cfg["cmd"] == ["/etc/debian_version"]
    assert cfg["env"]["GREETING"] == "hi" and cfg["env"]["PATH"]
    assert cfg["workdir"] == "/srv" and cfg["labels"] == {"org.example.kind": "fat"}
    assert cfg["exposed_ports"] == ["8080/tcp"]
    # The kept files really are enough: run the program in a chroot of the tree.
    out = tmp_path / "run"
    out.mkdir()
    with tarfile.open(str(tmp_path / "tree.tar")) as t:
        t.extractall(str(out))
    proc = subprocess.run(["chroot", str(out), "/usr/bin/cat", "/etc/debian_version"],
                          env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == open("/etc/debian_version", "rb").read()
    assert sorted(os.listdir(str(tmp_path))) == ["cfg.json", "run", "tree.tar"]  # temp root gone


def test_docker_archive_and_layout_give_the_same_bytes(fat, tmp_path):
    ok(smith_cmd("minimize", "--output", "a.tar", "--entrypoint", "/usr/bin/ls",
                 str(fat / "layout"), cwd=tmp_path))
    ok(smith_cmd("minimize", "--output", "b.tar", "--entrypoint", "/usr/bin/ls",
                 str(fat / "fat.docker.tar"), cwd=tmp_path))
    a, b = (tmp_path / "a.tar").read_bytes(), (tmp_path / "b.tar").read_bytes()
    assert a == b
    assert "usr/lib/x86_64-linux-gnu/libselinux.so.1" in members(tmp_path / "a.tar")


def test_overrides_nss_and_excludes(fat, tmp_path):
    ok(smith_cmd("minimize", "--output", "t.tar", "--config-out", "c.json", "--entrypoint",
                 "/usr/bin/ls", "--entrypoint=-l", "--env", "GREETING=bye", "--nss", "--user",
                 "app:20:21", "--path", "/usr/share/**", "--exclude", "*/doc/junk/README",
                 str(fat / "layout"), cwd=tmp_path))
    cfg = json.loads((tmp_path / "c.json").read_text())
    assert cfg["entrypoint"] == ["/usr/bin/ls", "-l"] and "cmd" not in cfg  # new entrypoint drops Cmd
    assert cfg["env"]["GREETING"] == "bye"
    names = members(tmp_path / "t.tar")
    assert "usr/share/doc/junk" in names and "usr/share/doc/junk/README" not in names
    with tarfile.open(str(tmp_path / "t.tar")) as t:
        assert b"app:x:20:21:" in t.extractfile("etc/passwd").read()


@pytest.mark.parametrize("args,message", [
    (["--entrypoint", "/usr/bin/nope"], "/usr/bin/nope does not exist"),
    (["--path", "/opt/*"], "'/opt/*' matches nothing"),
    (["--exclude", "/usr/bin/cat"], "excludes drop the program /usr/bin/cat"),
    (["--user", "app:1:1"], "--user only makes sense with --nss"),
    (["--bogus"], "unrecognized arguments"),
])
def test_user_errors(fat, tmp_path, args, message):
    proc = smith_cmd("minimize", "--output", "t.tar", *args, str(fat / "layout"), cwd=tmp_path)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert os.listdir(str(tmp_path)) == []  # no output, no temp root left behind


def test_excluding_part_of_the_closure_warns(fat, tmp_path):
    proc = ok(smith_cmd("minimize", "--output", "t.tar", "--exclude", "/usr/lib64/*",
                        str(fat / "layout"), cwd=tmp_path))
    assert "excludes drop /usr/lib64/ld-linux-x86-64.so.2, which the closure of cat needs" \
        in proc.stderr
    assert "usr/lib64/ld-linux-x86-64.so.2" not in members(tmp_path / "t.tar")


def test_hostile_layer_is_refused_and_temp_root_removed(tmp_path):
    layout = tmp_path / "evil"
    write_layout(layout, [tar_bytes([("usr", "dir", None), ("usr/../../escape", "file", b"x")])])
    work = tmp_path / "work"
    work.mkdir()
    proc = smith_cmd("minimize", "--output", "t.tar", "--entrypoint", "/x", str(layout), cwd=work)
    assert proc.returncode == 1 and "escape" in proc.stderr, proc.stderr
    assert os.listdir(str(work)) == [] and not (tmp_path / "escape").exists()


def tiny_static_elf():
    """A 120-byte static x86-64 executable (exit(0)): a program whose closure is itself."""
    import struct
    code = b"\x31\xff\xb8\x3c\x00\x00\x00\x0f\x05"  # xor edi,edi; mov eax,60; syscall
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, 62, 1, 0x400078, 64, 0, 0,
                       64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 120 + len(code), 120 + len(code), 0x1000)
    return ehdr + phdr + code


def test_path_star_star_keeps_every_entry_but_special_files(tmp_path):
    """`--path '/**'` on an image holding dangling, looping and escaping links, a fifo and a device
    node: every entry inside the root is kept (links as links), special files are not, no traceback."""
    layout = tmp_path / "img"
    write_layout(layout, [tar_bytes([
        ("bin", "dir", None), ("bin/x", "file", tiny_static_elf()), ("etc", "dir", None),
        ("etc/motd", "file", b"hi\n"), ("etc/dangling", "sym", "/nonexistent"), ("etc/loop", "sym", "loop"),
        ("etc/escape", "sym", "../../../../etc/passwd"), ("etc/motd.link", "sym", "motd"),
        ("etc/fifo", "fifo", None), ("etc/null", "chr", None), ("usr/share/doc", "dir", None),
        ("usr/share/doc/README", "file", b"doc\n")])])
    work = tmp_path / "work"
    work.mkdir()
    proc = ok(smith_cmd("minimize", "--output", "t.tar", "--path", "/**", str(layout), cwd=work))
    assert "Traceback" not in proc.stderr
    names = members(work / "t.tar")
    assert sorted(names) == ["bin", "bin/x", "etc", "etc/dangling", "etc/escape", "etc/loop", "etc/motd",
                             "etc/motd.link", "usr", "usr/share", "usr/share/doc", "usr/share/doc/README"]
    assert names["etc/escape"].issym() and names["etc/escape"].linkname == "../../../../etc/passwd"
    assert sorted(os.listdir(str(work))) == ["t.tar"]  # no temp root left behind


def test_path_star_star_on_a_plain_image(fat, tmp_path):
    """The issue's case: `--path '/**'` crashed with FileNotFoundError on any image with subdirectories."""
    proc = ok(smith_cmd("minimize", "--output", "t.tar", "--path", "/**", str(fat / "layout") + ":fat",
                        cwd=tmp_path))
    assert "Traceback" not in proc.stderr
    names = members(tmp_path / "t.tar")
    assert "usr/share/doc/junk/README" in names and names["lib"].issym() and "" not in names
