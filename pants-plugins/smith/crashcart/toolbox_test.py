"""The toolbox builder against real Debian packages (the host's installed ones, as trees and as
.debs rebuilt with dpkg-deb and unpacked by `smith extract`), checked with readelf and by
running the tools with the dynamic loader's own trace."""
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from smith.testutil import crashcart as testing
from smith.crashcart.toolbox import INTERP, LIB, MANIFEST, build_toolbox
from smith.errors import SmithError
from smith.packages import extract_cli
from smith.testutil.debian import require_tools, tool_env

SMALL = ("bash", "libc6", "libtinfo6")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """bash, libc6 and libtinfo6 as installed, one directory each."""
    require_tools("patchelf", "readelf", "dpkg-deb")
    root = tmp_path_factory.mktemp("trees")
    out = {}
    for name in SMALL:
        os.makedirs(str(root / name))
        testing.copy_package_tree(name, str(root / name))
        out[name] = str(root / name)
    return out


def readelf(paths):
    """path -> (interpreter, RUNPATH, RPATH, NODEFLIB set) as binutils' readelf reports them."""
    out = subprocess.run(["readelf", "-lWd"] + paths, env=tool_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True).stdout
    found = {}
    chunks = re.split(r"^File: ", out, flags=re.M)[1:] if len(paths) > 1 else [paths[0] + "\n" + out]
    for chunk in chunks:
        name = chunk.split("\n", 1)[0].strip()
        interp = re.search(r"Requesting program interpreter: ([^\]]+)\]", chunk)
        runpath = re.search(r"\(RUNPATH\)\s+Library runpath: \[([^\]]*)\]", chunk)
        nodeflib = re.search(r"\(FLAGS_1\)\s+Flags:.*NODEFLIB", chunk)
        rpath = re.search(r"\(RPATH\)\s+Library rpath: \[([^\]]*)\]", chunk)
        found[name] = tuple(m.group(1) if m else None for m in (interp, runpath, rpath)) + (
            nodeflib is not None,)
    return found


def elf_files(toolbox):
    files = []
    for group in ("bin", "lib"):
        d = os.path.join(toolbox, group)
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not os.path.islink(path):
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        files.append(path)
    return files


def test_every_elf_is_relocated():
    toolbox = testing.cached_toolbox()
    files = elf_files(toolbox)
    seen = readelf(files)
    assert sorted(seen) == sorted(files) and len(files) > 100
    programs = 0
    for path, (interp, runpath, rpath, nodeflib) in seen.items():
        if os.path.basename(path) == "ld-linux-x86-64.so.2":
            assert (interp, runpath) == (None, None)
            continue
        assert runpath == LIB and rpath is None and nodeflib, path
        if path.startswith(os.path.join(toolbox, "bin")):
            assert interp == INTERP, path
            programs += 1
    with open(os.path.join(toolbox, MANIFEST)) as f:
        manifest = json.load(f)
    assert programs >= 100 and {"bash", "ps", "strace", "ls", "ip", "less"} <= set(manifest["bin"])


def test_tools_load_only_the_toolbox_libraries(tmp_path):
    toolbox = testing.cached_toolbox()
    trace = str(tmp_path / "ld")  # one file per process: strace and its child run at once
    res = testing.run_mounted(toolbox, "x=$(ls /proc/self/); ps -p $$ -o comm=; "
                               "strace -qq -e trace=none true; ip -br link show lo",
                      {"LD_DEBUG": "libs", "LD_DEBUG_OUTPUT": trace})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[:2] == ["bash", "lo"]
    loaded = set()
    for name in os.listdir(str(tmp_path)):
        with open(str(tmp_path / name)) as f:
            loaded |= set(re.findall(r"calling init: (\S+)", f.read()))
    assert len(os.listdir(str(tmp_path))) >= 5  # bash, ls, ps, strace, true, ip
    assert "/dev/crashcart/lib/libc.so.6" in loaded and "/dev/crashcart/lib/libproc2.so.0" in loaded
    assert all(p.startswith("/dev/crashcart/lib/") for p in loaded), loaded
    assert not os.path.exists("/dev/crashcart")


def _deb(tree, name, tmp):
    """A .deb of the tree, built by dpkg-deb (gzip -1: fast)."""
    control = os.path.join(tree, "DEBIAN")
    os.makedirs(control)
    with open(os.path.join(control, "control"), "w") as f:
        f.write("Package: %s\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@t>\n"
                "Description: test copy\n" % name)
    out = str(tmp / (name + ".deb"))
    subprocess.run(["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "-b", tree, out],
                   env=tool_env(), check=True, stdout=subprocess.DEVNULL)
    return out


def test_from_smith_extract_tree_tars(trees, tmp_path):
    inputs = []
    for name in SMALL:
        copy = str(tmp_path / ("src-" + name))
        subprocess.run(["cp", "-a", trees[name], copy], env=tool_env(), check=True)
        deb = _deb(copy, name, tmp_path)
        with open(deb, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        tar = str(tmp_path / (name + ".tar"))
        assert extract_cli.main(["--output", tar, "--sha256", digest, "--name", name, deb]) == 0
        inputs.append(tar)
    script_dir = tmp_path / "script" / "usr" / "bin"
    script_dir.mkdir(parents=True)
    (script_dir / "hello").write_text("#!/bin/bash -e\necho hello from $BASH\n")
    (script_dir / "hello").chmod(0o755)
    out = str(tmp_path / "toolbox")
    manifest = build_toolbox(inputs + [str(tmp_path / "script")], out)
    assert manifest["scripts"] == ["hello"] and "libtinfo.so.6" in manifest["lib"]
    with open(os.path.join(out, "bin", "hello")) as f:
        assert f.readline() == "#!/dev/crashcart/bin/bash -e\n"
    res = testing.run_mounted(out, "hello; echo $BASH_VERSION")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "hello from /dev/crashcart/bin/bash" and lines[1].startswith("5.")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["script", "toolbox"] + ["src-" + n for n in SMALL]
        + [n + s for n in SMALL for s in (".deb", ".tar")])


def _digest(tree):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, tree)
            h.update(("%s %o %d\n" % (rel, st.st_mode, st.st_mtime)).encode())
            if os.path.islink(path):
                h.update(os.readlink(path).encode())
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def test_rebuild_is_identical_and_replaces(trees, tmp_path):
    out = str(tmp_path / "toolbox")
    build_toolbox([trees[n] for n in SMALL], out)
    first = _digest(out)
    os.utime(os.path.join(out, "bin", "bash"), (1, 1))
    build_toolbox([trees[n] for n in reversed(SMALL)], out)
    assert _digest(out) == first
    assert os.listdir(str(tmp_path)) == ["toolbox"]


def test_missing_library_is_an_error(trees, tmp_path):
    out = str(tmp_path / "toolbox")
    with pytest.raises(SmithError) as e:
        build_toolbox([trees["bash"], trees["libc6"]], out)
    assert "bin/bash needs libtinfo.so.6" in str(e.value)
    with pytest.raises(SmithError) as e:
        build_toolbox([trees["bash"], trees["libtinfo6"]], out)
    assert "no ld-linux-x86-64.so.2" in str(e.value) and "libc6" in str(e.value)
    assert os.listdir(str(tmp_path)) == []


def test_bad_inputs_and_output(trees, tmp_path):
    with pytest.raises(SmithError, match="does not exist"):
        build_toolbox([str(tmp_path / "nope")], str(tmp_path / "out"))
    (tmp_path / "notatar").write_text("x")
    with pytest.raises(SmithError, match="cannot read toolbox input"):
        build_toolbox([str(tmp_path / "notatar")], str(tmp_path / "out"))
    with pytest.raises(SmithError, match="no programs"):
        build_toolbox([trees["libc6"]], str(tmp_path / "out"))
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "keep").write_text("x")
    with pytest.raises(SmithError, match="is not a crashcart toolbox"):
        build_toolbox([trees[n] for n in SMALL], str(tmp_path / "precious"))
    assert sorted(os.listdir(str(tmp_path))) == ["notatar", "precious"]
    assert os.listdir(str(tmp_path / "precious")) == ["keep"]


def test_cli(trees, tmp_path):
    env = tool_env(PYTHONPATH=testing.SMITH_PARENT)
    out = str(tmp_path / "tb")
    cmd = [sys.executable, "-m", "smith.crashcart.toolbox", "--output", out]
    res = subprocess.run(cmd + [trees[n] for n in SMALL], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert res.returncode == 0, res.stderr
    assert re.match(r"^%s: \d+ programs, \d+ libraries$" % re.escape(out), res.stdout.strip())
    res = subprocess.run(cmd + [trees["bash"]], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert res.returncode == 1 and res.stderr.startswith("smith toolbox: error: ")
    res = subprocess.run(cmd + ["--bogus", trees["bash"]], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert res.returncode == 2
