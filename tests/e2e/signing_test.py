"""Issue 21 end to end: `./pants publish` of examples/hello signed with a key from `smith keygen`
(--smith-publish-signing-key, passphrase in SMITH_SIGNING_PASSWORD), with SLSA provenance, to a
real docker-registry on 127.0.0.1; then a real sigstore verifier (skopeo 1.18 from Debian trixie:
bookworm's skopeo 1.9.3 is built with sigstore disabled) and `smith pull --verify-key` accept it,
and refuse an unsigned image of the same repository and a tampered signature."""
import base64
import json
import subprocess
from pathlib import Path

import pytest

from e2e.repo import copy_repo, pants
from smith.registry import media_types, signing
from smith.registry.client import RegistryClient
from smith.testutil.local_registry import LocalRegistry
from smith.registry.provenance import fetch_provenance
from smith.registry.signatures import signature_tag
from smith.testutil.debian import PATH, tool_env
from smith.testutil.sigstore_skopeo import run_smith, sigstore_skopeo

PASSWORD = "e2e passphrase"
HELLO = "examples/hello:hello"


@pytest.fixture(scope="module")
def registry(scratch):
    reg = LocalRegistry(str(scratch / "signing-registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def keys(scratch):
    d = scratch / "signing-keys"
    d.mkdir()
    made = run_smith(["keygen", "--output", str(d / "release")], str(d),
                     SMITH_SIGNING_PASSWORD=PASSWORD)
    assert made.returncode == 0, made.stderr
    return d


@pytest.fixture(scope="module")
def published(scratch, registry, keys):
    repo = copy_repo(scratch / "signing" / "smith")
    build = repo / "examples/hello/BUILD"
    text = build.read_text()
    build.write_text(text.replace('name="hello",', f'''name="hello",
    image_repository="{registry.host}/hello",
    image_tags=["v1"],''', 1) + f'''
smith_image(
    name="unsigned",
    layers=[":config"],
    image_repository="{registry.host}/hello",
    image_tags=["unsigned"],
)
''')
    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "e2e"]):
        subprocess.run(git + args, check=True, env={"PATH": PATH}, stdout=subprocess.DEVNULL)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, stdout=subprocess.PIPE,
                            text=True, env={"PATH": PATH}).stdout.strip()
    log = pants(repo, "publish", HELLO, f"--smith-publish-signing-key={keys / 'release'}",
                "--smith-publish-builder-id=https://ci.example/smith-e2e",
                env={"SMITH_SIGNING_PASSWORD": PASSWORD}).stdout
    assert PASSWORD not in log
    unsigned = pants(repo, "publish", "examples/hello:unsigned").stdout
    digest = (repo / "dist/examples.hello/hello.digest").read_text().strip()
    return repo, log, digest, commit, unsigned


def skopeo_copy(tmp_path: Path, pub: str, src: str) -> subprocess.CompletedProcess:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {
        "": [{"type": "sigstoreSigned", "keyPath": pub}]}}}))
    regd = tmp_path / "registries.d"
    regd.mkdir(exist_ok=True)
    (regd / "default.yaml").write_text("default-docker:\n  use-sigstore-attachments: true\n")
    out = tmp_path / ("copy-%d" % len(list(tmp_path.glob("copy-*"))))
    return subprocess.run(sigstore_skopeo() + [
        "--policy", str(policy), "--registries.d", str(regd), "copy", "--src-tls-verify=false",
        "--remove-signatures", "docker://" + src, "dir:%s" % out],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tool_env(), timeout=300)


def test_publish_signs_and_attaches_provenance(published, registry, keys):
    repo, log, digest, commit, _ = published
    assert "1 signature(s) added (%s/hello:v1)" % registry.host in log, log[-3000:]
    assert "SLSA provenance" in log
    client = RegistryClient(registry.host)
    assert client.get_manifest("hello", signature_tag(digest), missing_ok=True)
    stmt, = fetch_provenance(client, "hello", digest,
                             signing.load_public_key(str(keys / "release.pub")))
    definition = stmt["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {
        "target": HELLO, "repository": registry.host + "/hello", "image_tags": ["v1"],
        "tag": "latest"}
    assert definition["resolvedDependencies"][0] == {"uri": "git:HEAD",
                                                     "digest": {"gitCommit": commit}}
    assert stmt["predicate"]["runDetails"] == {
        "builder": {"id": "https://ci.example/smith-e2e"}}


@pytest.mark.debian_mirror
def test_skopeo_and_smith_pull_accept_signed_refuse_unsigned_and_tampered(
        published, registry, keys, tmp_path):
    repo, _, digest, _, unsigned_log = published
    pub = str(keys / "release.pub")
    for src in ("%s/hello:v1" % registry.host, "%s/hello@%s" % (registry.host, digest)):
        ok = skopeo_copy(tmp_path, pub, src)
        assert ok.returncode == 0, ok.stderr
    ok = run_smith(["pull", "--verify-key", pub, "%s/hello@%s" % (registry.host, digest),
                    str(tmp_path / "pulled")], str(tmp_path))
    assert ok.returncode == 0, ok.stderr

    no = skopeo_copy(tmp_path, pub, "%s/hello:unsigned" % registry.host)
    assert no.returncode != 0
    assert "A signature was required, but no signature exists" in no.stderr
    unsigned = (repo / "dist/examples.hello/unsigned.digest").read_text().strip()
    no = run_smith(["pull", "--verify-key", pub, "%s/hello@%s" % (registry.host, unsigned),
                    str(tmp_path / "no")], str(tmp_path))
    assert no.returncode == 1
    assert no.stderr.startswith("smith pull: error: %s/hello@%s: no signature by %s" % (
        registry.host, unsigned, pub)), no.stderr

    # Tampered: hello is amd64 + arm64, so publish signed the index and each platform's manifest;
    # skopeo copying one platform by tag checks that platform's signature, smith pull by the
    # index digest the index's. Break them all.
    client = RegistryClient(registry.host)
    index = json.loads(client.get_manifest_by_digest("hello", digest)[0])
    signed = [digest] + [m["digest"] for m in index["manifests"]]
    originals = {}
    for d in signed:
        data, _, _ = client.get_manifest("hello", signature_tag(d))
        originals[d] = data
        manifest = json.loads(data)
        sig = bytearray(base64.b64decode(manifest["layers"][0]["annotations"][
            signing.SIGNATURE_ANNOTATION]))
        sig[10] ^= 0x40
        manifest["layers"][0]["annotations"][signing.SIGNATURE_ANNOTATION] = \
            base64.b64encode(bytes(sig)).decode()
        client.put_manifest("hello", signature_tag(d), json.dumps(manifest).encode(),
                            media_types.OCI_MANIFEST)
    try:
        no = skopeo_copy(tmp_path, pub, "%s/hello:v1" % registry.host)
        assert no.returncode != 0 and "Source image rejected" in no.stderr, no.stderr
        no = run_smith(["pull", "--verify-key", pub, "%s/hello@%s" % (registry.host, digest),
                        str(tmp_path / "no2")], str(tmp_path))
        assert no.returncode == 1 and "no signature by" in no.stderr
    finally:  # the registry is shared by the module's tests: put the real signatures back
        for d, data in originals.items():
            client.put_manifest("hello", signature_tag(d), data, media_types.OCI_MANIFEST)


def test_remote_image_verify_key(published, registry, keys):
    repo, _, digest, _, _ = published
    unsigned = (repo / "dist/examples.hello/unsigned.digest").read_text().strip()
    (repo / "remote_signed").mkdir()
    (repo / "remote_signed/release.pub").write_bytes((keys / "release.pub").read_bytes())
    (repo / "remote_signed/BUILD").write_text(f'''
smith_remote_image(name="signed", registry="{registry.host}", repository="hello",
                   digest="{digest}", verify_key="release.pub")
smith_remote_image(name="unsigned", registry="{registry.host}", repository="hello",
                   digest="{unsigned}", verify_key="release.pub")
''')
    pants(repo, "package", "remote_signed:signed")
    assert (repo / "dist/remote_signed/signed/index.json").exists()
    proc = pants(repo, "package", "remote_signed:unsigned", check=False)
    assert proc.returncode != 0
    assert "no signature by remote_signed/release.pub: the image is not signed" in proc.stdout, proc.stdout[-3000:]
