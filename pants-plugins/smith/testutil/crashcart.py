"""Helpers for crashcart's tests (not used by crashcart itself).

- host_package_trees(): the files of installed Debian packages (bash, coreutils, procps,
  strace, ... and the library packages they depend on), one directory per package, as
  `dpkg -L` lists them: the same trees `smith extract` makes, without the network.
- GDB_TOOLS: the same plus gdb and the Python standard library its embedded Python needs.
- cached_toolbox(): a toolbox built from those trees, cached under
  /tmp/smith-test-cache/crashcart/ keyed by the package versions and the builder's source.
- run_mounted(): run a script with the toolbox's bash, the toolbox bound at /dev/crashcart
  in a private mount namespace (no container), e.g. with the loader's LD_DEBUG trace.
- crashcart(): run `python -m smith.crashcart` as the zipapp will, with an explicit env.
- build_zipapp(): crashcart as dist/crashcart will be: a zipapp of only its start path
  (START_PATH), run by /usr/bin/python3 -I -S, so any non-stdlib import would fail.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import smith
from smith.crashcart.target import start_time  # noqa: F401 (tests use it from here)
from smith.testutil.debian import PATH, install_packages, tool_env

CACHE = "/tmp/smith-test-cache/crashcart"
TOOLS = ("bash", "coreutils", "grep", "procps", "strace", "less", "iproute2", "ncurses-base")
GDB_TOOLS = TOOLS + ("gdb", "libpython3.11-minimal", "libpython3.11-stdlib")
SMITH_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(smith.__file__)))
CRASHCART_DIR = os.path.join(SMITH_PARENT, "smith", "crashcart")


def _query(fmt: str, *packages: str) -> List[str]:
    out = subprocess.run(["dpkg-query", "-W", "-f=" + fmt] + list(packages), env=tool_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    return [line for line in out.split("\n") if line]


def _installed_packages() -> Dict[str, str]:
    """Installed package -> (section, "version<TAB>depends, pre-depends"), in one dpkg-query run."""
    found, provided = {}, {}
    fmt = "${Package}\t${Status}\t${Section}\t${Provides}\t${Version}\t${Depends}, ${Pre-Depends}\n"
    for line in _query(fmt):
        name, status, section, provides, rest = line.split("\t", 4)
        if status == "install ok installed":
            found[name] = (section, rest)
            for virtual in provides.split(","):
                if virtual.strip():
                    provided[virtual.strip().split(" ")[0]] = name
    for virtual, name in provided.items():
        found.setdefault(virtual, found[name] + (name,))
    return found


def package_closure(tools=TOOLS) -> Dict[str, str]:
    """The tools plus the library packages (section libs) they need, recursively: package ->
    version. Other dependencies (perl-base, base-files) ship no library the tools load."""
    install_packages(tools)
    installed = _installed_packages()
    todo, seen = list(tools), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if len(installed[name]) == 3:  # a virtual package: follow its provider
            todo.append(installed[name][2])
            continue
        version, deps = installed[name][1].split("\t")
        seen[name] = version
        for clause in deps.split(","):
            for alt in clause.split("|"):
                dep = alt.strip().split(" ")[0].split(":")[0]
                if dep in installed and installed[dep][0] == "libs":
                    todo.append(dep)
                    break
    return dict(sorted(seen.items()))


def copy_package_tree(package: str, dest: str) -> None:
    """The files dpkg installed for one package, at the paths dpkg lists them under."""
    listed = subprocess.run(["dpkg-query", "-L", package], env=tool_env(), check=True,
                            stdout=subprocess.PIPE, universal_newlines=True).stdout.split("\n")
    for path in listed:
        if not path.startswith("/") or not os.path.lexists(path):
            continue
        out = os.path.join(dest, path.lstrip("/"))
        # /bin, /lib... are symlinks on a merged-/usr host, but dpkg lists them as directories.
        if os.path.isdir(path) and (not os.path.islink(path) or path.count("/") == 1):
            os.makedirs(out, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.islink(path):
            os.symlink(os.readlink(path), out)
        else:
            shutil.copy2(path, out)


def _key(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\0")
    for name in ("toolbox.py",):
        with open(os.path.join(CRASHCART_DIR, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def host_package_trees(dest: str, tools=TOOLS) -> List[str]:
    trees = []
    for name in package_closure(tools):
        tree = os.path.join(dest, name)
        os.makedirs(tree)
        copy_package_tree(name, tree)
        trees.append(tree)
    return trees


def _prune_stale_builds() -> None:
    """Remove build dirs of test processes killed mid-build (e.g. by a timeout)."""
    now = time.time()
    for name in os.listdir(CACHE) if os.path.isdir(CACHE) else []:
        path = os.path.join(CACHE, name)
        if name.startswith("tmp") and now - os.path.getmtime(path) > 1800:
            shutil.rmtree(path, ignore_errors=True)


def cached_toolbox(tools=TOOLS) -> str:
    """A toolbox built from the host's packages; built once per package versions + builder."""
    from smith.crashcart.toolbox import build_toolbox
    from smith.testutil.debian import require_tools
    require_tools("patchelf")
    versions = package_closure(tools)
    path = os.path.join(CACHE, "host-" + _key("%s=%s" % kv for kv in versions.items()))
    if os.path.isdir(path):
        return path
    _prune_stale_builds()
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        trees = host_package_trees(os.path.join(tmp, "trees"), tools)
        built = os.path.join(tmp, "toolbox")
        build_toolbox(trees, built, shutil.which("patchelf", path=PATH))
        try:
            os.rename(built, path)
        except OSError:  # another test process won the race
            pass
    return path


def crashcart(*args: str, timeout: float = 60, input: str = None, **kw):
    """Run the crashcart CLI as a subprocess (python -I -S, like the zipapp)."""
    env = tool_env(PYTHONPATH=SMITH_PARENT)
    return subprocess.run([sys.executable, "-S", "-m", "smith.crashcart"] + list(args),
                          env=env, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, **kw)


# What `python3 -m smith.crashcart` imports from the smith package: the zipapp holds only these.
START_PATH = ("smith/__init__.py", "smith/errors.py", "smith/linux.py", "smith/safe_json.py",
              "smith/crashcart/__init__.py",
              "smith/crashcart/__main__.py", "smith/crashcart/attach.py",
              "smith/crashcart/cli.py", "smith/crashcart/enter.py",
              "smith/crashcart/shadow_dev.py", "smith/crashcart/syscalls.py",
              "smith/crashcart/target.py")


def build_zipapp(dest: str) -> str:
    """crashcart's zipapp as //:crashcart builds it (smith.zipapp_cli), holding only START_PATH."""
    from smith.zipapp_cli import write_zipapp
    write_zipapp(SMITH_PARENT, "smith.crashcart", dest, "/usr/bin/python3", only=START_PATH)
    return dest


def run_mounted(toolbox, script, extra_env=None):
    """Run script with the toolbox's bash, the toolbox bound at /dev/crashcart in a private
    mount namespace over a fresh tmpfs /dev (the host's /dev, shared with its devtmpfs, stays
    as it is)."""
    env = dict(extra_env or {}, PATH="/dev/crashcart/bin")
    assignments = " ".join("%s=%s" % kv for kv in env.items())
    outer = ("mount -t tmpfs -o size=4k none /dev && mkdir /dev/crashcart && "
             "mount --bind -o ro %s /dev/crashcart && "
             "exec env -i %s /dev/crashcart/bin/bash -c \"$0\"" % (toolbox, assignments))
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", outer, script],
                          env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
