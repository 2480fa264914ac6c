"""Issue 8 end to end: `./pants publish` of examples/hello to a real docker-registry on 127.0.0.1
(htpasswd auth behind TLS with a CA made here: credentials come from $REGISTRY_AUTH_FILE through
`[smith-registry].env_vars`, the CA from `[smith-registry].ca_certs`), then a digest-pinned
smith_remote_image of it used as the base of a new smith_image.

skopeo checks what we pushed; the pulled layout holds the very blobs `pants package` built.
"""
import base64
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from e2e.repo import copy_repo, pants, started_processes, tree_bytes
from smith.testutil.local_registry import LocalRegistry
from smith.testutil.debian import require_tools, tool_env

HELLO = "examples/hello:hello"


USER, PASSWORD = "smith", "s3cret pass"


def run_tool(*argv: str, cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr.decode()


def make_ca_and_server_cert(d: Path) -> None:
    """ca.pem, and server.pem/server.key for 127.0.0.1 signed by it (EC keys: fast)."""
    require_tools("openssl")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run_tool("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=smith e2e CA", cwd=d)
    run_tool("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run_tool("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)


def write_auth_file(path: Path, host: str, password: str) -> str:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return str(path)


@pytest.fixture(scope="module")
def registry():
    workdir = Path(tempfile.mkdtemp(prefix="smith-e2e-registry-"))
    make_ca_and_server_cert(workdir)
    require_tools("htpasswd")
    run_tool("htpasswd", "-B", "-b", "-c", "htpasswd", USER, PASSWORD, cwd=workdir)
    reg = LocalRegistry(str(workdir / "reg"), htpasswd=str(workdir / "htpasswd"),
                        tls=(str(workdir / "server.pem"), str(workdir / "server.key")))
    reg.ca = str(workdir / "ca.pem")
    reg.auth_file = write_auth_file(workdir / "auth.json", reg.host, PASSWORD)
    reg.wrong_auth_file = write_auth_file(workdir / "wrong.json", reg.host, "not the password")
    yield reg
    reg.stop()
    subprocess.run(["rm", "-rf", str(workdir)], env=tool_env(), check=True)


def pants_with_credentials(repo: Path, registry, *args: str, **kwargs):
    return pants(repo, *args, env={"REGISTRY_AUTH_FILE": registry.auth_file}, **kwargs)


@pytest.fixture(scope="module")
def repo(scratch, registry):
    """A repo copy whose hello image is published to the test registry (and one that skips it)."""
    repo = copy_repo(scratch / "registry" / "smith")
    build = repo / "examples/hello/BUILD"
    text = build.read_text()
    assert text.count('name="hello",') == 1
    build.write_text(text.replace('name="hello",', f'''name="hello",
    image_repository="{registry.host}/hello",
    image_tags=["v1", "latest"],''') + f'''
smith_image(
    name="hello_skipped",
    layers=[":app"],
    image_repository="{registry.host}/skipped",
    skip_push=True,
)
''')
    with open(repo / "pants.toml", "a") as f:
        f.write(f'\n[smith-registry]\nca_certs = "{registry.ca}"\n')
    return repo


@pytest.fixture(scope="module")
def published(repo, registry):
    log = pants_with_credentials(repo, registry, "package", "publish", HELLO,
                                 "examples/hello:hello_skipped").stdout
    return log, (repo / "dist/examples.hello/hello.digest").read_text().strip()


def manifest_digest(layout: Path) -> str:
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def skopeo_inspect(ref: str, raw: bool = False) -> subprocess.CompletedProcess:
    require_tools("skopeo")
    args = ["skopeo", "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}",
            *(["--raw"] if raw else []), ref]
    return subprocess.run(args, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)


def test_publish_pushes_every_tag_and_writes_the_digest(published, repo, registry):
    log, digest = published
    local = manifest_digest(repo / "dist/examples.hello/hello")
    assert digest == local, log[-3000:]
    assert digest in log  # `smith push` prints it
    for tag in ("v1", "latest"):
        assert f"{registry.host}/hello:{tag} published" in log, log[-3000:]
        inspected = skopeo_inspect(f"docker://{registry.host}/hello:{tag}")
        assert inspected.returncode == 0, inspected.stderr
        assert json.loads(inspected.stdout)["Digest"] == digest
    # The registry serves the very index of the layout (hello is amd64 + arm64), and every
    # platform's image comes back with `skopeo copy --all`.
    raw = skopeo_inspect(f"docker://{registry.host}/hello@{digest}", raw=True)
    blob = repo / "dist/examples.hello/hello/blobs/sha256" / digest.split(":")[1]
    assert raw.stdout.encode() == blob.read_bytes()
    index = json.loads(raw.stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"}]
    copy = repo / "copied"
    subprocess.run(["skopeo", "copy", "--all", "--src-tls-verify=false", "--src-creds", f"{USER}:{PASSWORD}",
                    f"docker://{registry.host}/hello@{digest}", f"oci:{copy}:v1"], env=tool_env(), check=True,
                   stdout=subprocess.PIPE, timeout=120)
    built = repo / "dist/examples.hello/hello"
    assert {k: v for k, v in tree_bytes(copy).items() if k.startswith("blobs/")} == \
        {k: v for k, v in tree_bytes(built).items() if k.startswith("blobs/")}

    assert f"{registry.host}/skipped:latest skipped" in log, log[-3000:]
    assert skopeo_inspect(f"docker://{registry.host}/skipped:latest").returncode != 0


def test_remote_image_by_digest_is_a_base_and_a_package(published, repo, registry):
    _, digest = published
    (repo / "remote").mkdir()
    (repo / "remote/note.txt").write_text("built on a pulled base\n")
    (repo / "remote/BUILD").write_text(f'''
smith_remote_image(
    name="hello_remote",
    registry="{registry.host}",
    repository="hello",
    digest="{digest}",
    platform="all",  # the whole amd64 + arm64 index, as published
)

# The same pull under another name: one Process serves both.
smith_remote_image(
    name="hello_remote_again",
    registry="{registry.host}",
    repository="hello",
    digest="{digest}",
    platform="all",
)

files(name="note", sources=["note.txt"])

smith_layer(name="extra", dependencies=[":note"], prefix="/read")

smith_image(name="derived", base=":hello_remote", layers=[":extra"])
''')
    targets = ["remote:hello_remote", "remote:hello_remote_again", "remote:derived"]
    log = pants_with_credentials(repo, registry, "package", *targets).stdout
    pulls = [p for p in started_processes(log) if p.startswith("Pulling ")]
    assert len(pulls) == 1, log[-3000:]  # one pull serves both packages and the base
    dist = repo / "dist/remote"
    assert tree_bytes(dist / "hello_remote_again") == tree_bytes(dist / "hello_remote")

    pulled, built = repo / "dist/remote/hello_remote", repo / "dist/examples.hello/hello"
    assert manifest_digest(pulled) == digest
    assert {k: v for k, v in tree_bytes(pulled).items() if k.startswith("blobs/")} == \
        {k: v for k, v in tree_bytes(built).items() if k.startswith("blobs/")}

    base = json.loads(skopeo_inspect(f"docker://{registry.host}/hello@{digest}").stdout)
    derived = json.loads(subprocess.run(
        ["skopeo", "inspect", "oci:%s:latest" % (repo / "dist/remote/derived")], env=tool_env(),
        check=True, stdout=subprocess.PIPE, text=True).stdout)
    assert derived["Layers"][:-1] == base["Layers"] and len(derived["Layers"]) == len(base["Layers"]) + 1
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", "oci:%s:latest" % (repo / "dist/remote/derived")],
        env=tool_env(), check=True, stdout=subprocess.PIPE, text=True).stdout)
    assert config["config"]["Entrypoint"] == ["/usr/bin/hello"]  # inherited from the pulled base

    # Cached by digest: with the registry down the same build needs no network.
    registry.kill()
    try:
        again = pants_with_credentials(repo, registry, "package", "remote:derived").stdout
        assert [p for p in started_processes(again) if p.startswith("Pulling ")] == [], again[-3000:]
    finally:
        registry.start()


def test_a_tag_alone_is_refused_naming_the_target(repo, registry):
    (repo / "remote_tag").mkdir()
    (repo / "remote_tag/BUILD").write_text(f'''
smith_remote_image(name="by_tag", registry="{registry.host}", repository="hello")
''')
    proc = pants(repo, "package", "remote_tag:by_tag", check=False)
    assert proc.returncode != 0
    assert "remote_tag:by_tag" in proc.stdout and "digest" in proc.stdout, proc.stdout[-3000:]
    assert "tag alone is refused" in proc.stdout, proc.stdout[-3000:]


def test_a_wrong_password_fails_the_publish_clearly(published, repo, registry):
    proc = pants(repo, "publish", HELLO, env={"REGISTRY_AUTH_FILE": registry.wrong_auth_file},
                 check=False)
    assert proc.returncode != 0
    assert f"{registry.host}/hello:v1 failed" in proc.stdout, proc.stdout[-3000:]
    assert "check the username and password" in proc.stdout, proc.stdout[-3000:]
    assert registry.wrong_auth_file in proc.stdout, proc.stdout[-3000:]
