"""Issue 5 end to end: smith_minimize of a real fat Debian image (debootstrap + redis-server).

The fat image is written as an OCI layout (smith layer/image) and as a docker archive (skopeo copy);
`./pants package` of smith_minimize on both gives the same image digest, runc runs
`redis-server --version` from it with a read-only root, and a hostile docker archive fails with a
clear error, writing nothing outside the sandbox; smith's README smith.yaml examples (the `cat`
package build and `type: oci`) build and run. Set SMITH_BENCH_OUT=FILE to record the sizes.
"""
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

import smith
from e2e.repo import copy_repo, pants
from smith.testutil.debian import require_tools, tool_env

CACHE = Path("/tmp/smith-test-cache/fat-redis")
VERSION = "v1-bookworm-minbase-redis-server"  # bump to rebuild the cached fat image
MIRROR = "http://deb.debian.org/debian"
FAT_CONFIG = {"cmd": ["redis-server"], "exposed_ports": ["6379/tcp"], "workdir": "/data",
              "env": {"REDIS_FLAVOUR": "fat"}, "labels": {"org.example.fat": "yes"}}
BUILD = """
smith_minimize(name="from-layout", image="layout", image_tag="fat")
smith_minimize(name="from-archive", image="redis.docker.tar")
smith_minimize(name="hostile", image="evil.docker.tar", entrypoint=["/bin/x"])
"""


def run(*cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], env=kw.pop("env", tool_env()), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)
    assert proc.returncode == 0, "%s failed:\n%s" % (cmd, proc.stdout[-4000:])
    return proc.stdout


def smith_cli(*args, cwd):
    env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
    return run(sys.executable, "-m", "smith", *args, cwd=str(cwd), env=env)


def debootstrap_redis(root: Path) -> None:
    require_tools("debootstrap", "chroot")
    run("debootstrap", "--variant=minbase", "bookworm", root, MIRROR)
    # No service starts inside the chroot (the package's postinst would try).
    (root / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
    os.chmod(str(root / "usr/sbin/policy-rc.d"), 0o755)
    run("chroot", root, "apt-get", "install", "-y", "--no-install-recommends", "redis-server",
        env=tool_env(DEBIAN_FRONTEND="noninteractive"))
    run("chroot", root, "apt-get", "clean")
    (root / "usr/sbin/policy-rc.d").unlink()
    # Device nodes, fifos and sockets cannot go into a layer (runtimes provide /dev).
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                os.unlink(p)


def build_fat(dest: Path) -> None:
    """debootstrap minbase + redis-server, as an OCI layout and a docker archive, in `dest`."""
    require_tools("skopeo")
    root = CACHE / (VERSION + ".root")  # kept until the layout is done: debootstrap is the slow part
    if not root.exists():
        tmp_root = Path(str(root) + ".tmp-%d" % os.getpid())
        shutil.rmtree(str(tmp_root), ignore_errors=True)
        try:
            debootstrap_redis(tmp_root)
            os.rename(str(tmp_root), str(root))
        finally:
            shutil.rmtree(str(tmp_root), ignore_errors=True)
    (dest / "config.json").write_text(json.dumps(FAT_CONFIG))
    smith_cli("layer", "--output", "layer", "--uid", "0", "--gid", "0", "--keep-special",
              "--dir", "/=%s" % root, cwd=dest)
    smith_cli("image", "--output", "layout", "--tag", "fat", "--config", "config.json",
              "--no-skeleton", "--uid", "0", "--gid", "0", "--layer", "layer", cwd=dest)
    run("skopeo", "copy", "oci:%s:fat" % (dest / "layout"),
        "docker-archive:%s:fat-redis:latest" % (dest / "redis.docker.tar"))
    shutil.rmtree(str(dest / "layer"))


@pytest.fixture(scope="module")
def fat():
    cached = CACHE / VERSION
    if not (cached / "redis.docker.tar").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cached) + ".tmp-%d" % os.getpid())
        shutil.rmtree(str(tmp), ignore_errors=True)
        tmp.mkdir()
        try:
            build_fat(tmp)
            shutil.rmtree(str(cached), ignore_errors=True)
            os.rename(str(tmp), str(cached))
            shutil.rmtree(str(CACHE / (VERSION + ".root")))
        finally:
            shutil.rmtree(str(tmp), ignore_errors=True)
    return cached


def evil_archive(path: Path, escape: str) -> None:
    """A docker archive whose one layer climbs out of the root with `..`."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        data = b"escaped\n"
        ti = tarfile.TarInfo("../../../../../../../../.." + escape)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/x"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["evil:latest"],
                            "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(str(path), "w") as t:
        for name, data in (("manifest.json", manifest), ("config.json", config),
                           ("l/layer.tar", layer_bytes)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))


@pytest.fixture(scope="module")
def repo(scratch):
    r = copy_repo(scratch / "minimize" / "smith")
    (r / "fat").mkdir()
    (r / "fat/BUILD").write_text(BUILD)
    return r


def layer_sizes(layout: Path):
    """(compressed, uncompressed) bytes of an image's layers."""
    index = json.loads((layout / "index.json").read_text())
    blob = lambda d: layout / "blobs" / "sha256" / d.split(":")[1]  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    packed = unpacked = 0
    for lay in manifest["layers"]:
        packed += lay["size"]
        with gzip.open(str(blob(lay["digest"])), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                unpacked += len(chunk)
    return packed, unpacked


@pytest.mark.debian_mirror
def test_minimized_redis_from_layout_and_archive_is_one_image_that_runs(repo, fat, tmp_path):
    require_tools("umoci", "runc")
    shutil.copytree(str(fat / "layout"), str(repo / "fat/layout"))
    shutil.copy(str(fat / "redis.docker.tar"), str(repo / "fat/redis.docker.tar"))
    pants(repo, "package", "fat:from-layout", "fat:from-archive")
    a, b = repo / "dist/fat/from-layout", repo / "dist/fat/from-archive"
    index_a = json.loads((a / "index.json").read_text())
    index_b = json.loads((b / "index.json").read_text())
    assert index_a["manifests"][0]["digest"] == index_b["manifests"][0]["digest"]

    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", "%s:latest" % a, bundle)
    rootfs = bundle / "rootfs"
    assert (rootfs / "usr/bin/redis-server").is_file()
    assert not (rootfs / "usr/bin/apt-get").exists() and not (rootfs / "bin/sh").exists()
    config = json.loads((bundle / "config.json").read_text())
    assert "REDIS_FLAVOUR=fat" in config["process"]["env"] and config["process"]["cwd"] == "/data"
    config["process"]["terminal"] = False
    config["process"]["args"] = ["redis-server", "--version"]
    config["process"]["cwd"] = "/"
    config["root"]["readonly"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(["runc", "run", "--bundle", str(bundle), "smith-e2e-min-%d" % os.getpid()],
                          env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Redis server v=7."), proc.stdout

    fat_packed, fat_unpacked = layer_sizes(fat / "layout")
    min_packed, min_unpacked = layer_sizes(a)
    assert fat_packed > 5 * min_packed and fat_unpacked > 5 * min_unpacked
    out = os.environ.get("SMITH_BENCH_OUT")
    if out:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                    if line.startswith("model name")), platform.processor())
        Path(out).write_text(
            "# smith_minimize: fat redis image vs minimized\n\n"
            "Recorded by tests/e2e/minimize_test.py (`SMITH_BENCH_OUT=... pytest`) on %s UTC,\n"
            "%s, %d CPUs, %s %s.\n\n"
            "Fat image: `debootstrap --variant=minbase bookworm` + `apt-get install redis-server`\n"
            "(one layer, written by `smith layer`/`smith image`; the docker archive by `skopeo copy`).\n"
            "Minimized: `smith_minimize` (the ELF closure of redis-server + the smith skeleton).\n"
            "Both sources give the manifest %s.\n\n"
            "| | fat | minimized | ratio fat/minimized |\n|---|---:|---:|---:|\n"
            "| layers, compressed (bytes) | %d | %d | %.1f |\n"
            "| layers, uncompressed tar (bytes) | %d | %d | %.1f |\n"
            % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), cpu, os.cpu_count() or 0,
               platform.system(), platform.release(), index_a["manifests"][0]["digest"],
               fat_packed, min_packed, fat_packed / min_packed,
               fat_unpacked, min_unpacked, fat_unpacked / min_unpacked))


def test_hostile_docker_archive_fails_clearly_and_writes_nothing_outside(repo):
    escape = "/tmp/smith-e2e-escape-%s" % uuid.uuid4().hex
    evil_archive(repo / "fat/evil.docker.tar", escape)
    proc = pants(repo, "package", "fat:hostile", check=False)
    assert proc.returncode != 0
    assert "smith minimize: error:" in proc.stdout and "escape" in proc.stdout, proc.stdout[-3000:]
    assert not os.path.exists(escape)
    assert not (repo / "dist/fat/hostile").exists()
    assert not [p for p in repo.rglob("smith-e2e-escape-*")]


def run_image(layout: Path, bundle: Path, name: str, data: bytes) -> str:
    """umoci-unpack an image, bind-mount a dir holding `data` at /read, run it read-only under runc."""
    run("umoci", "unpack", "--image", "%s:latest" % layout, bundle)
    read = bundle.parent / (name + "-read")
    read.mkdir()
    (read / "data").write_bytes(data)
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/read"]
    config["mounts"].append({"destination": "/read", "type": "bind", "source": str(read),
                             "options": ["rbind", "ro"]})
    config["process"]["terminal"] = False
    config["root"]["readonly"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(["runc", "run", "--bundle", str(bundle), "smith-e2e-%s-%d" % (name, os.getpid())],
                          env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.debian_mirror
def test_smith_readme_yaml_examples_build_and_run(repo, tmp_path):
    """Oracle smith's README examples as smith.yaml files: the `cat` package build and `type: oci`."""
    require_tools("umoci", "runc")
    pants(repo, "package", "examples/smith-yaml/cat:smith-cat#image", "examples/smith-yaml/oci:sha256sum#image")
    out = run_image(repo / "dist/examples.smith-yaml.cat/smith-cat", tmp_path / "cat", "cat", b"meow\n")
    assert out == "meow\n"
    out = run_image(repo / "dist/examples.smith-yaml.oci/sha256sum", tmp_path / "sha", "sha", b"abc")
    assert out.startswith("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ")


# -- issue 18: smith_minimize(trace=...) of examples/pyapp ----------------------------------------
PYAPP_SPEC = {  # examples/pyapp/BUILD's _SERVICE as the core spec (smith/launch/service_spec.py)
    "read": "examples/pyapp/read", "ready_port": 8080, "ready_log": "pyapp: serving on",
    "http_checks": [{"path": "/", "status": 200, "body": '"loader": "CSafeLoader"'}],
    "stop_signal": "TERM", "expect_stop_exit": 0,
}
PYAPP_DROPS_JSON = """
# e2e: excludes drop a module the traced test imports: the check must fail and name it
smith_minimize(name="minimal-without-json", image=":image", trace=[":image-service"],
               entrypoint=["/usr/bin/python3.11"], cmd=["/opt/pyapp"],
               excludes=["/usr/lib/python3.11/json"])
"""


def file_bytes(layout: Path) -> int:
    index = json.loads((layout / "index.json").read_text())
    blob = lambda d: layout / "blobs" / "sha256" / d.split(":")[1]  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    total = 0
    for lay in manifest["layers"]:
        with tarfile.open(str(blob(lay["digest"])), "r:*") as t:
            total += sum(m.size for m in t if m.isreg())
    return total


@pytest.mark.debian_mirror
def test_pyapp_minimized_by_tracing_its_service_test(repo, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("tracing runs containers and fanotify: root")
    require_tools("runc")
    pants(repo, "package", "examples/pyapp:image", "examples/pyapp:minimal")
    full, minimal = repo / "dist/examples.pyapp/image", repo / "dist/examples.pyapp/minimal"
    minimal_bytes = file_bytes(minimal)
    assert minimal_bytes * 1.5 < file_bytes(full)

    # Traced twice by hand (the Process is cached): the same trace, the same tree, and the
    # minimized image holds at most 1.2x the bytes of the files the service really used.
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(dict(PYAPP_SPEC, name="e2e", layout=str(full))))
    trees = []
    for i in (1, 2):
        smith_cli("trace", "--output", tmp_path / ("t%d.json" % i), "--image", full, "--", "launch",
                  "service", "--spec", spec, "--runtime", "runc", cwd=repo)
        smith_cli("minimize", "--output", tmp_path / ("tree%d.tar" % i), "--entrypoint", "/usr/bin/python3.11",
                  "--trace", tmp_path / ("t%d.json" % i), "--python-sourceless", "/usr/lib/python3.11/**",
                  full, cwd=tmp_path)
        trees.append((tmp_path / ("tree%d.tar" % i)).read_bytes())
    assert (tmp_path / "t1.json").read_bytes() == (tmp_path / "t2.json").read_bytes()
    assert trees[0] == trees[1]
    # python_sourceless: the standard library as D/N.pyc, no .py, no __pycache__; the app keeps its .py
    with tarfile.open(str(tmp_path / "tree1.tar")) as t:
        names = set(t.getnames())
    stdlib = [n for n in names if n.startswith("usr/lib/python3.11/")]
    assert "usr/lib/python3.11/json/__init__.pyc" in names and "usr/lib/python3.11/http/server.pyc" in names
    # (but for Debian's sitecustomize.py, a symlink to /etc: a linked source is left alone; and
    # os.py, getpath's landmark: os is frozen, so it has no traced .pyc to replace it)
    assert sorted(n for n in stdlib if n.endswith(".py")) == ["usr/lib/python3.11/os.py",
                                                              "usr/lib/python3.11/sitecustomize.py"]
    assert [n for n in stdlib if "__pycache__/" in n] == [
        "usr/lib/python3.11/__pycache__/sitecustomize.cpython-311.pyc"]
    assert "opt/pyapp/pyapp/server.py" in names
    root = tmp_path / "root"
    smith_cli("unpack", "--output", root, full, cwd=tmp_path)
    used = 0
    for p in json.loads((tmp_path / "t1.json").read_text())["paths"]:
        host = os.path.realpath(str(root / p.lstrip("/")))
        if host.startswith(str(root) + "/") and os.path.isfile(host):
            used += os.path.getsize(host)
    # The goal is 1.2x; the sourceless standard library brings it to ~1.04x (was 1.16x
    # with each traced module's .py kept next to its .pyc).
    assert minimal_bytes <= 1.1 * used, (minimal_bytes, used)

    # A minimization that drops what the test needs fails the build and names it.
    build = repo / "examples/pyapp/BUILD"
    original = build.read_text()
    build.write_text(original + PYAPP_DROPS_JSON)
    try:
        proc = pants(repo, "package", "examples/pyapp:minimal-without-json", check=False)
    finally:
        build.write_text(original)
    assert proc.returncode != 0
    assert ("examples/pyapp:minimal-without-json: the minimized image fails "
            "examples/pyapp:image-service") in proc.stdout, proc.stdout[-3000:]
    assert "Missing, by its output: Python module 'json'" in proc.stdout, proc.stdout[-3000:]
    assert not (repo / "dist/examples.pyapp/minimal-without-json").exists()
