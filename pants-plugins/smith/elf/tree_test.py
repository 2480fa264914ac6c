"""A root assembled here from tiny C programs resolves as the root's own ld.so does (run in a
chroot), and the closure, packed by `smith closure --output-tar`, runs under runc."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
from typing import Dict, Iterable, List, Set

import pytest

import smith
from smith.elf.closure import compute_closure
from smith.errors import SmithError
from smith.testutil.debian import install_packages, require_tools, tool_env
from smith.testutil.ldso import host_platform

TRIPLET = "x86_64-linux-gnu"
PLATFORMS = ("x86_64", "haswell", "xeon_phi")  # what glibc 2.36 may expand $PLATFORM to on x86-64
HOST_LIBDIR = "/usr/lib/" + TRIPLET

SOURCES = {
    "extra.c": 'const char *extra(void) { return WHO; }\n',
    "greet.c": '#include <stdio.h>\nconst char *extra(void);\n'
               'void greet(void) { printf("greet+%s\\n", extra()); }\n',
    "hello.c": 'void greet(void);\nint main(void) { greet(); return 0; }\n',
    "chain.c": 'const char *chain(void) { return "chain"; }\n',
    "plat.c": 'const char *chain(void);\nconst char *plat(void) { return chain(); }\n',
    "platmain.c": '#include <stdio.h>\nconst char *plat(void);\n'
                  'int main(void) { printf("plat+%s\\n", plat()); return 0; }\n',
    "lp.c": 'const char *lp(void) { return WHO; }\n',
    "lpmain.c": '#include <stdio.h>\nconst char *lp(void);\n'
                'int main(void) { printf("lp+%s\\n", lp()); return 0; }\n',
    "static.c": '#include <stdio.h>\nint main(void) { printf("static\\n"); return 0; }\n',
    "gone.c": 'int gone(void) { return 1; }\n',
    "a.c": 'const char *a(void) { return WHO; }\n',
    "b.c": 'const char *a(void);\nconst char *b(void) { return a(); }\n',
    "dup.c": '#include <stdio.h>\nconst char *b(void);\n'
             'int main(void) { printf("dup+%s\\n", b()); return 0; }\n',
    "plug.c": 'const char *extra(void);\nconst char *plug(void) { return extra(); }\n',
    "dl.c": '#include <dlfcn.h>\n#include <stdio.h>\nint main(void) {\n'
            '  void *h = dlopen("/opt/plugins/plug.so", RTLD_NOW);\n'
            '  if (!h) { printf("dlopen: %s\\n", dlerror()); return 1; }\n'
            '  const char *(*f)(void) = (const char *(*)(void))dlsym(h, "plug");\n'
            '  printf("plug+%s\\n", f()); return 0; }\n',
    "needy.c": 'int gone(void);\nint main(void) { return gone(); }\n',
}


def _run(cmd: List[str], **kw) -> str:
    proc = subprocess.run(cmd, env=kw.pop("env", tool_env()), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)
    assert proc.returncode == 0, "%s failed (%d):\n%s" % (cmd, proc.returncode, proc.stdout)
    return proc.stdout


def _gcc(out: str, srcs: Iterable[str], *flags: str) -> None:
    os.makedirs(os.path.dirname(out), exist_ok=True)
    _run(["gcc", "-O1", "-o", out, *srcs, *flags])


def _patch(src: str, dst: str, offset: int, value: bytes) -> None:
    """A copy of an ELF file with a header byte changed: wrong class or wrong machine."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    data = bytearray(open(src, "rb").read())
    data[offset:offset + len(value)] = value
    with open(dst, "wb") as f:
        f.write(data)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> str:
    require_tools("gcc", "ldconfig", "chroot")
    install_packages(["libc6-dev"])  # headers and libc.a for the static programs
    base = tmp_path_factory.mktemp("elf-tree")
    src, r = str(base / "src"), str(base / "root")
    os.makedirs(src)
    for name, text in SOURCES.items():
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
    s = lambda n: os.path.join(src, n)  # noqa: E731
    # A merged-/usr Debian-style root with the host's libc and loader.
    os.makedirs(r + "/usr/lib/" + TRIPLET)
    os.makedirs(r + "/usr/lib64")
    os.makedirs(r + "/usr/bin")
    for name in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy2(os.path.realpath(os.path.join(HOST_LIBDIR, name)), r + "/usr/lib/%s/%s" % (TRIPLET, name))
    for link, target in (("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin")):
        os.symlink(target, os.path.join(r, link))
    os.symlink("/lib/%s/ld-linux-x86-64.so.2" % TRIPLET, r + "/usr/lib64/ld-linux-x86-64.so.2")
    shutil.copy2(os.path.realpath("/usr/bin/env"), r + "/usr/bin/env")
    # libextra via an ld.so.conf include; a decoy next to libgreet that RUNPATH must not reach.
    _gcc(r + "/opt/extra/lib/libextra.so.1", [s("extra.c")], "-shared", "-fPIC", '-DWHO="conf"',
         "-Wl,-soname,libextra.so.1")
    _gcc(r + "/opt/app/lib/libextra.so.1", [s("extra.c")], "-shared", "-fPIC", '-DWHO="decoy"',
         "-Wl,-soname,libextra.so.1")
    os.makedirs(r + "/etc/ld.so.conf.d")
    with open(r + "/etc/ld.so.conf", "w") as f:
        f.write("# relative include: relative to /etc\ninclude ld.so.conf.d/*.conf\n")
    with open(r + "/etc/ld.so.conf.d/extra.conf", "w") as f:
        f.write("/opt/extra/lib\n")
    _gcc(r + "/opt/app/lib/libgreet.so.1.0", [s("greet.c")], "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1",
         "-L" + r + "/opt/extra/lib", "-l:libextra.so.1")
    os.symlink("libgreet.so.1.0", r + "/opt/app/lib/libgreet.so.1")
    # Wrong machine and wrong class copies earlier on hello's RUNPATH: ld.so skips them.
    _patch(r + "/opt/app/lib/libgreet.so.1.0", r + "/opt/app/badmachine/libgreet.so.1", 18, b"\xb7\x00")
    _patch(r + "/opt/app/lib/libgreet.so.1.0", r + "/opt/app/badclass/libgreet.so.1", 4, b"\x01")
    _gcc(r + "/opt/app/bin/hello", [s("hello.c")], "-L" + r + "/opt/app/lib", "-l:libgreet.so.1",
         "-Wl,-rpath-link," + r + "/opt/extra/lib", "-Wl,--enable-new-dtags",
         "-Wl,-rpath,$ORIGIN/../badmachine:${ORIGIN}/../badclass:$ORIGIN/../lib")
    os.symlink("/opt/app/bin/hello", r + "/usr/bin/hello")
    with open(r + "/opt/app/bin/greet.sh", "w") as f:
        f.write("#!/opt/app/bin/hello\n")
    with open(r + "/opt/app/bin/greet-env", "w") as f:
        f.write("#!/usr/bin/env hello\n")
    os.chmod(r + "/opt/app/bin/greet.sh", 0o755)
    os.chmod(r + "/opt/app/bin/greet-env", 0o755)
    # DT_RPATH with $PLATFORM/$LIB, inherited by libplat for its own DT_NEEDED (libchain): one
    # copy per value ld.so may give $PLATFORM on x86-64 CPUs (haswell on most Intel hosts).
    for platform in PLATFORMS:
        pdir = r + "/opt/%s/lib/%s" % (platform, TRIPLET)
        _gcc(pdir + "/libchain.so.1", [s("chain.c")], "-shared", "-fPIC", "-Wl,-soname,libchain.so.1")
        _gcc(pdir + "/libplat.so.1", [s("plat.c")], "-shared", "-fPIC", "-Wl,-soname,libplat.so.1",
             "-L" + pdir, "-l:libchain.so.1")
    _gcc(r + "/opt/plat/bin/plat", [s("platmain.c")], "-L" + pdir, "-l:libplat.so.1",
         "-Wl,-rpath-link," + pdir, "-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/$PLATFORM/$LIB")
    # Only the baseline platform's dir: the program cannot run on a haswell or xeon_phi CPU.
    odir = r + "/opt/only/x86_64/lib"
    _gcc(odir + "/libonly.so.1", [s("chain.c")], "-shared", "-fPIC", "-Wl,-soname,libonly.so.1")
    _gcc(r + "/opt/only/bin/only", [s("static.c")], "-L" + odir, "-Wl,--no-as-needed", "-l:libonly.so.1",
         "-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/only/$PLATFORM/lib")
    # A glibc-hwcaps variant next to a baseline library (x86-64-v3 CPUs load it), with a
    # dependency of its own that the baseline copy does not have.
    hdir = r + "/opt/hw/lib"
    _gcc(hdir + "/libhw.so.1", [s("chain.c")], "-shared", "-fPIC", "-Wl,-soname,libhw.so.1")
    _gcc(r + "/opt/hw/dep/libhwdep.so.1", [s("extra.c")], "-shared", "-fPIC", '-DWHO="v3"',
         "-Wl,-soname,libhwdep.so.1")
    _gcc(hdir + "/glibc-hwcaps/x86-64-v3/libhw.so.1", [s("chain.c")], "-shared", "-fPIC",
         "-Wl,-soname,libhw.so.1", "-Wl,--no-as-needed", "-L" + r + "/opt/hw/dep", "-l:libhwdep.so.1",
         "-Wl,--enable-new-dtags", "-Wl,-rpath,/opt/hw/dep")
    _gcc(r + "/opt/hw/bin/hw", [s("static.c")], "-L" + hdir, "-Wl,--no-as-needed", "-l:libhw.so.1",
         "-Wl,--enable-new-dtags", "-Wl,-rpath,/opt/hw/lib")
    # LD_LIBRARY_PATH comes before RUNPATH.
    _gcc(r + "/opt/lp/lib/liblp.so.1", [s("lp.c")], "-shared", "-fPIC", '-DWHO="runpath"', "-Wl,-soname,liblp.so.1")
    _gcc(r + "/opt/ldlp/liblp.so.1", [s("lp.c")], "-shared", "-fPIC", '-DWHO="ldlp"', "-Wl,-soname,liblp.so.1")
    _gcc(r + "/opt/lp/bin/lp", [s("lpmain.c")], "-L" + r + "/opt/lp/lib", "-l:liblp.so.1",
         "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib")
    # A soname is searched once per process, breadth-first: dup needs libb then liba (both in
    # /opt/dup/a); libb's RUNPATH has another liba, which must not be used.
    _gcc(r + "/opt/dup/b/liba.so.1", [s("a.c")], "-shared", "-fPIC", '-DWHO="b-dir"', "-Wl,-soname,liba.so.1")
    _gcc(r + "/opt/dup/a/liba.so.1", [s("a.c")], "-shared", "-fPIC", '-DWHO="a-dir"', "-Wl,-soname,liba.so.1")
    _gcc(r + "/opt/dup/a/libb.so.1", [s("b.c")], "-shared", "-fPIC", "-Wl,-soname,libb.so.1",
         "-L" + r + "/opt/dup/b", "-l:liba.so.1", "-Wl,--enable-new-dtags", "-Wl,-rpath,/opt/dup/b")
    _gcc(r + "/opt/dup/bin/dup", [s("dup.c")], "-Wl,--no-as-needed", "-L" + r + "/opt/dup/a", "-l:libb.so.1",
         "-l:liba.so.1", "-Wl,--enable-new-dtags", "-Wl,-rpath,/opt/dup/a")
    # A program that dlopens a plugin (traced with --extra-lib), next to a data file.
    _gcc(r + "/opt/plugins/plug.so", [s("plug.c")], "-shared", "-fPIC", "-L" + r + "/opt/extra/lib",
         "-l:libextra.so.1")
    with open(r + "/opt/plugins/plug.txt", "w") as f:
        f.write("data the plugin reads\n")
    _gcc(r + "/opt/dl/bin/dl", [s("dl.c")])
    # Static and static-pie programs.
    _gcc(r + "/opt/static/hello-static", [s("static.c")], "-static")
    _gcc(r + "/opt/static/hello-spie", [s("static.c")], "-static-pie")
    # A library that is not in the root, and a link that climbs out of it.
    _gcc(str(base / "gone/libgone.so.1"), [s("gone.c")], "-shared", "-fPIC", "-Wl,-soname,libgone.so.1")
    _gcc(r + "/opt/needy/needy", [s("needy.c")], "-L" + str(base / "gone"), "-l:libgone.so.1")
    os.symlink("../../../../../../usr/bin/env", r + "/opt/escape")
    _run(["ldconfig", "-r", r])  # ld.so.cache for the root, as a package's postinst trigger would
    return r


def _chroot_realpaths(root: str, paths: Iterable[str]) -> Dict[str, str]:
    """Real paths as seen inside the chroot (absolute links resolve inside it)."""
    paths = list(paths)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: chroot and answer
        try:
            os.close(rfd)
            os.chroot(root)
            os.chdir("/")
            os.write(wfd, json.dumps({p: os.path.realpath(p) for p in paths}).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return json.loads(out)


def _ld_so_loads(root: str, prog: str, env: Dict[str, str]) -> Set[str]:
    """What the root's own ld.so loads for `prog` (run on its real path, like exec would)."""
    out = _run(["chroot", root, "/lib64/ld-linux-x86-64.so.2", "--list", prog], env=tool_env(**env))
    paths = []
    for line in out.splitlines():
        words = line.split()
        target = words[2] if "=>" in words else words[0]
        assert target != "not", line
        if target.startswith("/"):
            paths.append(target)
    return set(_chroot_realpaths(root, paths).values())


def _objects(root: str, prog: str, env: Dict[str, str], platform: str = "") -> Set[str]:
    """What the closure maps for `prog` on a CPU where ld.so expands $PLATFORM to `platform`
    (default: this machine's, so it can be compared with the root's own ld.so)."""
    platform = platform or host_platform()
    result = compute_closure(root, [prog], env=env)
    procs = [p for p in result.processes if p.platform == platform]
    assert len(procs) == 1, [p.platform for p in result.processes]
    return {o.found.path for o in procs[0].objects[1:]}


@pytest.mark.parametrize("prog,env", [
    ("/opt/app/bin/hello", {}),
    ("/opt/plat/bin/plat", {}),
    ("/opt/lp/bin/lp", {}),
    ("/opt/dup/bin/dup", {}),
    ("/opt/lp/bin/lp", {"LD_LIBRARY_PATH": "/opt/ldlp"}),
    ("/opt/app/bin/hello", {"LD_PRELOAD": "libchain.so.1", "LD_LIBRARY_PATH": "/opt/x86_64/lib/" + TRIPLET}),
])
def test_closure_loads_what_the_roots_ld_so_loads(tree: str, prog: str, env: Dict[str, str]) -> None:
    theirs = _ld_so_loads(tree, prog, env)
    ours = _objects(tree, prog, env)
    assert ours == theirs
    assert len(ours) >= 3


def test_search_rules_pick_the_right_files(tree: str) -> None:
    hello = _objects(tree, "/usr/bin/hello", {})
    lib = "/usr/lib/%s/" % TRIPLET
    assert hello == {lib + "ld-linux-x86-64.so.2", lib + "libc.so.6", "/opt/app/lib/libgreet.so.1.0",
                     "/opt/extra/lib/libextra.so.1"}  # not the decoy, not the bad copies
    for platform in PLATFORMS:
        assert "/opt/%s/lib/%s/libchain.so.1" % (platform, TRIPLET) in _objects(tree, "/opt/plat/bin/plat", {},
                                                                                platform)
    assert "/opt/ldlp/liblp.so.1" in _objects(tree, "/opt/lp/bin/lp", {"LD_LIBRARY_PATH": "/opt/ldlp"})
    assert "/opt/lp/lib/liblp.so.1" in _objects(tree, "/opt/lp/bin/lp", {})
    dup = _objects(tree, "/opt/dup/bin/dup", {})
    assert "/opt/dup/a/liba.so.1" in dup and "/opt/dup/b/liba.so.1" not in dup
    paths = compute_closure(tree, ["/usr/bin/hello"]).paths
    for p in ("/usr/bin/hello", "/opt/app/bin/hello", "/opt/app/lib/libgreet.so.1", "/lib", "/lib64",
              "/usr/lib64/ld-linux-x86-64.so.2", "/etc/ld.so.cache"):
        assert p in paths
    assert not any("bad" in p or p == "/opt/app/lib/libextra.so.1" for p in paths)


def test_closure_holds_every_platform_expansion(tree: str) -> None:
    """The build machine's CPU must not decide what the image holds: every $PLATFORM value of
    the architecture gets its libraries, whatever `ld.so --help` says here."""
    paths = set(compute_closure(tree, ["/opt/plat/bin/plat"]).paths)
    for platform in PLATFORMS:
        for lib in ("libplat.so.1", "libchain.so.1"):
            assert "/opt/%s/lib/%s/%s" % (platform, TRIPLET, lib) in paths
    with pytest.raises(SmithError, match=r"library libonly\.so\.1 needed by /opt/only/bin/only was not found "
                                         r"in the root .* on CPUs where ld\.so expands \$PLATFORM to haswell"):
        compute_closure(tree, ["/opt/only/bin/only"])


def test_closure_keeps_glibc_hwcaps_variants_and_their_deps(tree: str) -> None:
    paths = set(compute_closure(tree, ["/opt/hw/bin/hw"]).paths)
    assert {"/opt/hw/lib/libhw.so.1", "/opt/hw/lib/glibc-hwcaps/x86-64-v3/libhw.so.1",
            "/opt/hw/dep/libhwdep.so.1"} <= paths


def test_extra_libs_are_traced_like_dlopen(tree: str) -> None:
    plain = set(compute_closure(tree, ["/opt/dl/bin/dl"]).paths)
    assert "/opt/extra/lib/libextra.so.1" not in plain
    paths = set(compute_closure(tree, ["/opt/dl/bin/dl"], extra_libs=["/opt/plugins/*"]).paths)
    assert paths - plain == {"/opt/plugins/plug.so", "/opt/plugins/plug.txt", "/opt/extra/lib/libextra.so.1",
                             "/etc/ld.so.cache"}
    with pytest.raises(SmithError, match=r"--extra-lib /opt/nothing/\*\.so matched nothing"):
        compute_closure(tree, ["/opt/dl/bin/dl"], extra_libs=["/opt/nothing/*.so"])


def test_scripts_bring_their_interpreters(tree: str) -> None:
    hello = set(compute_closure(tree, ["/opt/app/bin/hello"]).paths)
    sh = set(compute_closure(tree, ["/opt/app/bin/greet.sh"]).paths)
    assert sh == hello | {"/opt/app/bin/greet.sh"}
    via_env = set(compute_closure(tree, ["/opt/app/bin/greet-env"]).paths)
    assert hello | {"/opt/app/bin/greet-env", "/usr/bin/env", "/usr/bin/hello"} <= via_env


def test_static_programs_need_only_themselves(tree: str) -> None:
    for prog in ("/opt/static/hello-static", "/opt/static/hello-spie"):
        assert compute_closure(tree, [prog]).paths == [prog]


def test_errors_name_what_is_wrong(tree: str) -> None:
    with pytest.raises(SmithError, match=r"/opt/escape -> \.\./.*climbs out of the root"):
        compute_closure(tree, ["/opt/escape"])
    with pytest.raises(SmithError) as e:
        compute_closure(tree, ["/opt/needy/needy"])
    msg = str(e.value)
    assert "libgone.so.1" in msg and "/opt/needy/needy" in msg and "/usr/lib/%s" % TRIPLET in msg


def _smith(args: List[str], cwd: str) -> subprocess.CompletedProcess:
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    return subprocess.run([sys.executable, "-m", "smith", "closure", *args], env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


PROGRAMS = {
    "/opt/app/bin/greet-env": ([], "greet+conf\n"),
    "/opt/plat/bin/plat": ([], "plat+chain\n"),
    "/opt/lp/bin/lp": (["LD_LIBRARY_PATH=/opt/ldlp"], "lp+ldlp\n"),
    "/opt/static/hello-static": ([], "static\n"),
    "/opt/dl/bin/dl": ([], "plug+conf\n"),
    "/opt/dup/bin/dup": ([], "dup+a-dir\n"),
    "/opt/static/hello-spie": ([], "static\n"),
}


def test_image_of_the_closure_runs_under_runc(tree: str, tmp_path) -> None:
    require_tools("runc")
    out_tar = str(tmp_path / "closure.tar")
    args = ["--root", tree, *PROGRAMS, "--env", "LD_LIBRARY_PATH=/opt/ldlp", "--nss",
            "--extra-lib", "/opt/plugins/*.so", "--user", "app:10:10", "--output-tar", out_tar]
    proc = _smith(args, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.splitlines()
    assert listed == sorted(listed) and "/opt/ldlp/liblp.so.1" in listed
    again = str(tmp_path / "again.tar")
    assert _smith(args[:-1] + [again], str(tmp_path)).returncode == 0
    assert open(out_tar, "rb").read() == open(again, "rb").read()  # deterministic
    with tarfile.open(out_tar) as t:
        members = {m.name: m for m in t.getmembers()}
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members.values())
        assert "app:x:10:10:" in t.extractfile("etc/passwd").read().decode()
        assert {"/" + n for n in members if not members[n].isdir()} == set(listed) | {
            "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"}
    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(out_tar) as t:
        t.extractall(str(rootfs), numeric_owner=True)
    _run(["runc", "spec"], cwd=str(bundle))
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = True
    for i, (prog, (env, expected)) in enumerate(sorted(PROGRAMS.items())):
        spec["process"]["args"] = [prog]
        spec["process"]["env"] = ["PATH=/usr/bin:/bin"] + env
        (bundle / "config.json").write_text(json.dumps(spec))
        cid = "smith-elf-test-%d-%d" % (os.getpid(), i)
        try:
            proc = subprocess.run(["runc", "run", "--bundle", str(bundle), cid], env=tool_env(),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=60)
        finally:
            subprocess.run(["runc", "delete", "--force", cid], env=tool_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert (proc.returncode, proc.stdout) == (0, expected), (prog, proc.stderr)


def test_root_tar_gives_the_same_closure(tree: str, tmp_path) -> None:
    tree_tar = str(tmp_path / "tree.tar")
    with tarfile.open(tree_tar, "w") as t:
        for name in sorted(os.listdir(tree)):
            t.add(os.path.join(tree, name), arcname=name)
    work = tmp_path / "cwd"
    work.mkdir()
    by_dir = _smith(["--root", tree, "/opt/app/bin/greet-env"], str(work))
    by_tar = _smith(["--root-tar", tree_tar, "/opt/app/bin/greet-env"], str(work))
    assert by_dir.returncode == 0 and by_tar.returncode == 0, by_tar.stderr
    assert by_tar.stdout == by_dir.stdout
    assert os.listdir(str(work)) == []  # the unpacked root is removed
    with tarfile.open(str(tmp_path / "evil.tar"), "w") as t:
        t.add(os.path.join(tree, "opt/app/bin/greet.sh"), arcname="../evil")
    bad = _smith(["--root-tar", str(tmp_path / "evil.tar"), "/x"], str(work))
    assert bad.returncode == 1 and "entry '../evil' refused: the name '../evil' contains '..'" in bad.stderr
    assert os.listdir(str(work)) == []


def test_an_images_names_are_printed_escaped(tree: str, tmp_path, capsys) -> None:
    """`smith closure` prints the image's paths (its listing) and warnings quoting the image's
    words (a preload that is not there): an OSC in them reached the terminal as is before."""
    from smith.elf import cli
    evil = "\x1b]2;owned\x07"
    os.makedirs(str(tmp_path / "root/bin"))
    shutil.copy(tree + "/opt/static/hello-static", str(tmp_path / "root/bin" / evil))
    assert cli.main(["--root", str(tmp_path / "root"), "/bin/" + evil]) == 0
    assert cli.main(["--root", tree, "--env", "LD_PRELOAD=lib%s.so" % evil, "/usr/bin/hello"]) == 0
    out, err = capsys.readouterr()
    assert "/bin/\\x1b]2;owned\\x07\n" in out and "\x1b" not in out, out
    assert "warning: preload lib\\x1b]2;owned\\x07.so is not in the root" in err and "\x1b" not in err, err
