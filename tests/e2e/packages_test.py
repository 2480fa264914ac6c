"""Issue 4 end to end: package repositories through real `./pants` runs on a copy of this repo.

- examples/redis, examples/nginx, examples/cat (bookworm from the Debian mirror): packaged, then
  run by runc from a read-only root (redis-cli SET/GET and curl from the host over loopback);
- hermetic deb and rpm repositories built by the tests (smith/testutil/fixture_repos.py), served on
  127.0.0.1: generate-lockfiles -> package -> runc runs the packaged program;
- bad inputs (lockfile/BUILD mismatch, wrong sha256, pinned file gone) are clear errors and leave
  nothing in dist/; `smith-outdated --check` reports an old pin and exits non-zero.
"""
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from e2e.repo import copy_repo, stop_pantsd, umoci_ref
from e2e.repo import pants as repo_pants
from smith.testutil import fixture_repos
from smith.testutil.debian import require_tools, tool_env

# ----------------------------------------------------------------------------------------------
# runc helpers
# ----------------------------------------------------------------------------------------------


def unpack(layout: Path, dest: Path) -> Path:
    """umoci-unpack LAYOUT:latest into a runc bundle whose root is read-only."""
    require_tools("umoci", "runc")
    ref = umoci_ref(layout, "latest", dest.parent / (dest.name + "-amd64"))  # redis: multi-platform
    subprocess.run(["umoci", "unpack", "--image", ref, str(dest)], check=True,
                   env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    config = json.loads((dest / "config.json").read_text())
    config["process"]["terminal"] = False
    config["root"]["readonly"] = True
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def configure(bundle: Path, args: Optional[List[str]] = None, host_network: bool = False,
              writable: Dict[str, Path] = None, read: Optional[Path] = None) -> dict:
    """Set the process args, share the host's network (for loopback clients), bind-mount host
    directories writable over the image's volumes (e.g. /write, /run) and `read` read-only over
    /read (umoci turns the image's volumes into empty tmpfs mounts: config comes from outside,
    as a Kubernetes configmap would)."""
    config = json.loads((bundle / "config.json").read_text())
    if args is not None:
        config["process"]["args"] = args
    if host_network:
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
    for target, source in (writable or {}).items():
        os.chown(source, 10, 10)
        config["mounts"] = [m for m in config["mounts"] if m["destination"] != target]
        config["mounts"].append({"destination": target, "type": "bind", "source": str(source),
                                 "options": ["rbind", "rw"]})
    if read is not None:
        config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/read"]
        config["mounts"].append({"destination": "/read", "type": "bind", "source": str(read),
                                 "options": ["rbind", "ro"]})
    (bundle / "config.json").write_text(json.dumps(config))
    return config


def runc_run(bundle: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runc", "run", "--bundle", str(bundle), f"{name}-{os.getpid()}"],
                          env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120)


@contextlib.contextmanager
def runc_background(bundle: Path, name: str) -> Iterator[Path]:
    """Run the container in the background; yields the file that collects its output."""
    cid = f"{name}-{os.getpid()}"
    log = bundle.parent / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["runc", "run", "--bundle", str(bundle), cid], env=tool_env(),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield log
    finally:
        subprocess.run(["runc", "kill", cid, "KILL"], env=tool_env(), stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=30)
        finally:
            subprocess.run(["runc", "delete", "-f", cid], env=tool_env(), stderr=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, log: Path, timeout: float = 30):
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except (OSError, subprocess.CalledProcessError):
            if time.time() > deadline:
                raise AssertionError(f"{what} never became ready; container output:\n{log.read_text()}")
            time.sleep(0.2)


# ----------------------------------------------------------------------------------------------
# The examples (packages from the Debian mirror, downloaded once into Pants' cache)
# ----------------------------------------------------------------------------------------------


def pants(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """One pantsd serves this module's runs."""
    return repo_pants(repo, *args, check=check, pantsd=True, timeout=900)


@pytest.fixture(scope="module")
def repo(scratch):
    copy = copy_repo(scratch / "packages" / "smith")
    try:
        yield copy
    finally:
        stop_pantsd(copy)


@pytest.fixture(scope="module")
def examples(repo):
    pants(repo, "package", "examples/redis:redis", "examples/nginx:nginx", "examples/cat:cat")
    return repo / "dist"


@pytest.mark.debian_mirror
def test_cat_prints_read_data(examples, tmp_path):
    bundle = unpack(examples / "examples.cat/cat", tmp_path / "cat")
    read = Path(os.environ["SMITH_REPO"]) / "examples/cat/read"
    configure(bundle, read=read)
    run = runc_run(bundle, "smith-e2e-cat")
    assert run.returncode == 0, run.stderr
    assert run.stdout == (read / "data").read_text()
    # The ELF closure, not the whole package set: no shell, no other coreutils.
    rootfs = bundle / "rootfs"
    assert not (rootfs / "usr/bin/ls").exists() and not (rootfs / "usr/bin/sh").exists()


@pytest.mark.debian_mirror
def test_redis_version_and_set_get_over_loopback(examples, tmp_path):
    require_tools("redis-cli")
    bundle = unpack(examples / "examples.redis/redis", tmp_path / "redis")
    configure(bundle, args=["/usr/bin/redis-server", "--version"])
    run = runc_run(bundle, "smith-e2e-redis-version")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Redis server v=7.0"), run.stdout

    port = free_port()
    write, rundir = tmp_path / "write", tmp_path / "run"
    write.mkdir(), rundir.mkdir()
    configure(bundle, args=["/usr/bin/redis-server", "/read/redis.conf", "--port", str(port)],
              host_network=True, writable={"/write": write, "/run": rundir},
              read=Path(os.environ["SMITH_REPO"]) / "examples/redis/read")
    cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]

    def call(*args: str) -> str:
        return subprocess.run([*cli, *args], check=True, env=tool_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=10).stdout.strip()

    def ping():
        if call("PING") != "PONG":
            raise OSError("not ready")

    with runc_background(bundle, "smith-e2e-redis") as log:
        wait_until(ping, "redis", log)
        assert call("SET", "smith", "microcontainer") == "OK"
        assert call("GET", "smith") == "microcontainer"
        assert call("SAVE") == "OK"  # data goes to /write, the root stays read-only
        assert (write / "dump.rdb").is_file()
        assert (rundir / "redis.pid").is_file()
        assert call("CONFIG", "GET", "dir").splitlines()[1] == "/write"


@pytest.mark.debian_mirror
def test_nginx_serves_a_page_on_8080(examples, tmp_path):
    require_tools("curl")
    bundle = unpack(examples / "examples.nginx/nginx", tmp_path / "nginx")
    write, rundir = tmp_path / "write", tmp_path / "run"
    write.mkdir(), rundir.mkdir()
    config = configure(bundle, host_network=True, writable={"/write": write, "/run": rundir},
                       read=Path(os.environ["SMITH_REPO"]) / "examples/nginx/read")
    assert config["process"]["user"]["uid"] == 10 and config["root"]["readonly"] is True
    page = (Path(os.environ["SMITH_REPO"]) / "examples/nginx/www/index.html").read_text()
    with runc_background(bundle, "smith-e2e-nginx") as log:
        body = wait_until(lambda: subprocess.run(
            ["curl", "-fsS", "http://127.0.0.1:8080/"], check=True, env=tool_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10).stdout, "nginx", log)
        assert body == page
        assert (rundir / "nginx.pid").is_file()
    assert "GET / HTTP/1.1" in (write / "access.log").read_text()


# ----------------------------------------------------------------------------------------------
# Hermetic deb + rpm repositories built and served by the test
# ----------------------------------------------------------------------------------------------

HERMETIC_BUILD = """
smith_repository(name="debrepo", kind="deb", url="{deb_url}", suites=["stable"],
                 components=["main"], architectures=["amd64"], keyring="keyring.gpg")
smith_repository(name="rpmrepo", kind="rpm", url="{rpm_url}", architectures=["x86_64", "noarch"])

# The fixture packages link against the host's libc, which they do not ship.
files(name="libc", sources=["usr/lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2"])

# Every lockfile of the directory is a smith_lockfile target the smith_packages depend on.
smith_lockfiles(name="lockfiles")

smith_packages(name="hello-deb", repository=":debrepo", packages=["hello"])
smith_layer(name="deb-app", dependencies=[":hello-deb", ":libc"])
smith_image(name="deb-image", layers=[":deb-app"], entrypoint=["/usr/bin/hello"])

smith_packages(name="hello-rpm", repository=":rpmrepo", packages=["rhello"])
smith_layer(name="rpm-app", dependencies=[":hello-rpm", ":libc"])
smith_image(name="rpm-image", layers=[":rpm-app"], entrypoint=["/usr/bin/rhello"],
            env={{"LD_LIBRARY_PATH": "/usr/lib64"}})

# Bad inputs: each with a lockfile the test breaks in its own way.
smith_packages(name="mismatch", repository=":debrepo", packages=["hello", "hello-data"],
               lockfile="hello-deb.lock.json")
smith_packages(name="bad-sha", repository=":debrepo", packages=["hello"])
smith_packages(name="gone", repository=":debrepo", packages=["hello"])
smith_packages(name="old", repository=":debrepo", packages=["hello"])
smith_layer(name="mismatch-layer", dependencies=[":mismatch"])
smith_image(name="mismatch-image", layers=[":mismatch-layer"])
smith_layer(name="bad-sha-layer", dependencies=[":bad-sha"])
smith_image(name="bad-sha-image", layers=[":bad-sha-layer"])
smith_layer(name="gone-layer", dependencies=[":gone"])
smith_image(name="gone-image", layers=[":gone-layer"])
"""


@pytest.fixture(scope="module")
def hermetic(repo):
    """examples-free directory `pkgtest/` in the repo copy, with both repositories served."""
    deb_root, rpm_root = fixture_repos.deb_repo(), fixture_repos.rpm_repo()
    with fixture_repos.serve(os.path.join(deb_root, "repo")) as deb_url, \
            fixture_repos.serve(os.path.join(rpm_root, "repo")) as rpm_url:
        d = repo / "pkgtest"
        d.mkdir()
        (d / "BUILD").write_text(HERMETIC_BUILD.format(deb_url=deb_url, rpm_url=rpm_url))
        shutil.copy(os.path.join(deb_root, "keyring.gpg"), d / "keyring.gpg")
        for path in ("usr/lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2"):
            (d / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy("/" + path, d / path)
        pants(repo, "generate-lockfiles", "--resolve=hello-deb", "--resolve=hello-rpm")
        yield d


def test_hermetic_deb_and_rpm_lock_package_and_run(hermetic, repo, tmp_path):
    deb_lock = json.loads((hermetic / "hello-deb.lock.json").read_text())
    assert {p["name"]: p["version"] for p in deb_lock["packages"]} == {
        "hello": "2.0-1", "libgreet1": "1.1-1", "hello-data": "1.0", "greeting-en": "1.0"}
    assert deb_lock["request"] == {"packages": ["hello"], "exclude": []}
    rpm_lock = json.loads((hermetic / "hello-rpm.lock.json").read_text())
    assert {p["name"]: p["version"] for p in rpm_lock["packages"]} == {
        "rhello": "2.0-1", "librgreet": "1.2-1", "rhelper": "1.0-1", "rgreet-en": "1.0-1"}

    pants(repo, "package", "pkgtest:deb-image", "pkgtest:rpm-image")
    for image, program in (("deb-image", "hello"), ("rpm-image", "rhello")):
        bundle = unpack(repo / "dist/pkgtest" / image, tmp_path / image)
        run = runc_run(bundle, f"smith-e2e-{image}")
        assert run.returncode == 0, run.stderr
        assert run.stdout == "hello from libgreet 1.1\n", (program, run.stdout)


    # The SBOM: an artifact manifest in the layout whose subject is the image.
    layout = repo / "dist/pkgtest/deb-image"
    index = json.loads((layout / "index.json").read_text())
    image, = [m for m in index["manifests"] if "artifactType" not in m]
    sbom_entry, = [m for m in index["manifests"] if m.get("artifactType") == "application/spdx+json"]
    blob = lambda d: json.loads((layout / "blobs/sha256" / d.split(":")[1]).read_text())
    artifact = blob(sbom_entry["digest"])
    assert artifact["subject"]["digest"] == image["digest"]
    sbom = blob(artifact["layers"][0]["digest"])
    assert sbom["spdxVersion"] == "SPDX-2.3"
    assert sorted(p["name"] for p in sbom["packages"] if p["SPDXID"] != "SPDXRef-Image") == \
        sorted(p["name"] for p in deb_lock["packages"])
    ids = {p["SPDXID"]: p["name"] for p in sbom["packages"]}
    files = {f["SPDXID"]: f["fileName"] for f in sbom["files"]}
    origin = {files[r["relatedSpdxElement"]]: ids[r["spdxElementId"]] for r in sbom["relationships"]
              if r["relationshipType"] == "CONTAINS" and r["spdxElementId"] in ids
              and r["relatedSpdxElement"] in files}
    assert origin["./usr/bin/hello"] == "hello"
    assert origin["./usr/lib/x86_64-linux-gnu/libgreet.so.1"] == "libgreet1"


def test_bad_lockfiles_are_clear_errors_and_leave_dist_clean(hermetic, repo):
    good = json.loads((hermetic / "hello-deb.lock.json").read_text())
    bad_sha = json.loads(json.dumps(good))
    libgreet = next(p for p in bad_sha["packages"] if p["name"] == "libgreet1")
    libgreet["sha256"] = "0" * 64
    (hermetic / "bad-sha.lock.json").write_text(json.dumps(bad_sha))
    # A pin whose file is no longer in the repository (and so not in Pants' cache either).
    gone = json.loads(json.dumps(good))
    hello = next(p for p in gone["packages"] if p["name"] == "hello")
    vanished = os.urandom(64)
    hello.update(url=hello["url"].replace("hello_2.0-1", "hello_2.0-0"),
                 sha256=hashlib.sha256(vanished).hexdigest(), size=len(vanished))
    (hermetic / "gone.lock.json").write_text(json.dumps(gone))

    expected = {
        "mismatch": ["pkgtest:mismatch: the lockfile pkgtest/hello-deb.lock.json does not match",
                     "./pants generate-lockfiles --resolve=mismatch"],
        "bad-sha": ["pkgtest:bad-sha: cannot fetch libgreet1 1.1-1 pinned in pkgtest/bad-sha.lock.json",
                    "./pants generate-lockfiles --resolve=bad-sha"],
        "gone": ["pkgtest:gone: cannot fetch hello 2.0-1 pinned in pkgtest/gone.lock.json",
                 "./pants smith-outdated pkgtest:gone"],
    }
    for name, messages in expected.items():
        out = pants(repo, "package", f"pkgtest:{name}-image", check=False)
        assert out.returncode != 0
        for message in messages:
            assert message in out.stdout, out.stdout[-4000:]
        assert not (repo / "dist/pkgtest" / f"{name}-image").exists()
    leftovers = [p for p in (repo / "dist").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_smith_outdated_reports_an_old_pin(hermetic, repo):
    old = json.loads((hermetic / "hello-deb.lock.json").read_text())
    libgreet = next(p for p in old["packages"] if p["name"] == "libgreet1")
    deb_root = fixture_repos.deb_repo()
    previous = Path(deb_root, "repo/pool/main/libgreet1_0.9-1_amd64.deb")
    data = previous.read_bytes()
    libgreet.update(version="0.9-1", url=libgreet["url"].replace("1.1-1", "0.9-1"),
                    sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (hermetic / "old.lock.json").write_text(json.dumps(old))

    # One run (each ./pants start is the expensive part): two current locks and an old one.
    out = pants(repo, "smith-outdated", "--check", "pkgtest:hello-deb", "pkgtest:hello-rpm", "pkgtest:old",
                check=False)
    assert out.returncode == 3, out.stdout[-3000:]
    assert "pkgtest/hello-deb.lock.json: up to date" in out.stdout, out.stdout[-3000:]
    assert "pkgtest/hello-rpm.lock.json: up to date" in out.stdout
    assert "pkgtest/old.lock.json: libgreet1 0.9-1 -> 1.1-1" in out.stdout
    assert "1 pin(s) outdated or gone" in out.stdout
