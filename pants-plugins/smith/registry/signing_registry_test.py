"""Signed pushes, verified pulls and SLSA provenance against the real distribution registry
(Debian's docker-registry on 127.0.0.1); interop with a real sigstore verifier and signer
(skopeo 1.18 from Debian trixie: bookworm's 1.9.3 is built with sigstore disabled)."""
import base64
import json
import os
import re
import subprocess

import pytest

from smith.registry import media_types, signing
from smith.registry.client import RegistryClient
from smith.testutil.local_registry import LocalRegistry
from smith.registry.provenance import (DSSE_MEDIA_TYPE, IN_TOTO_MEDIA_TYPE, fetch_provenance,
                                       open_envelope)
from smith.testutil.sample_images import LayoutBuilder, simple_layout
from smith.registry.signatures import signature_tag
from smith.testutil.debian import tool_env
from smith.testutil.sigstore_skopeo import run_smith, sigstore_skopeo

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = LocalRegistry(str(tmp_path_factory.mktemp("registry")))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    for name in ("release", "other"):
        made = run_smith(["keygen", "--output", str(d / name)], str(d),
                         SMITH_SIGNING_PASSWORD=PASSWORD)
        assert made.returncode == 0, made.stderr
    return d


def push(tmp_path, layout, dest, *extra, password=PASSWORD):
    env = {"SMITH_SIGNING_PASSWORD": password} if password is not None else {}
    return run_smith(["push", *extra, layout, dest], str(tmp_path), **env)


def pull(tmp_path, ref, out, key):
    return run_smith(["pull", "--verify-key", key, ref, str(out)], str(tmp_path))


def sig_manifest(registry, repo, digest):
    client = RegistryClient(registry.host)
    data, _, _ = client.get_manifest(repo, signature_tag(digest))
    return client, json.loads(data)


def put_sig_manifest(client, repo, digest, manifest):
    body = json.dumps(manifest).encode()
    client.put_manifest(repo, signature_tag(digest), body, media_types.OCI_MANIFEST)


def test_signed_push_and_verified_pull(registry, keys, tmp_path):
    simple_layout(str(tmp_path / "img"), salt="signed")
    pushed = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/app:1.0",
                  "--tag", "latest", "--sign-key", str(keys / "release"))
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.stdout.strip()
    assert "2 signature(s) added" in pushed.stderr
    assert PASSWORD not in pushed.stderr + pushed.stdout
    client, manifest = sig_manifest(registry, "team/app", digest)
    assert [l["mediaType"] for l in manifest["layers"]] == [signing.SIMPLESIGNING_MEDIA_TYPE] * 2
    refs = []
    for layer in manifest["layers"]:
        payload = client_blob(registry, "team/app", layer["digest"])
        got_digest, ref = signing.parse_payload(payload, "payload")
        assert got_digest == digest
        refs.append(ref)
        sig = base64.b64decode(layer["annotations"][signing.SIGNATURE_ANNOTATION])
        assert signing.verify(signing.load_public_key(str(keys / "release.pub")), payload, sig)
    assert refs == [registry.host + "/team/app:1.0", registry.host + "/team/app:latest"]
    config = json.loads(client_blob(registry, "team/app", manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == [l["digest"] for l in manifest["layers"]]

    # a re-publish adds nothing; another key appends a layer, as cosign does
    again = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/app:1.0",
                 "--sign-key", str(keys / "release"))
    assert again.returncode == 0 and "0 signature(s) added" in again.stderr, again.stderr
    other = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/app:1.0",
                 "--sign-key", str(keys / "other"))
    assert other.returncode == 0, other.stderr
    assert len(sig_manifest(registry, "team/app", digest)[1]["layers"]) == 3

    ref = "%s/team/app@%s" % (registry.host, digest)
    for key in ("release", "other"):
        ok = pull(tmp_path, ref, tmp_path / ("out-" + key), str(keys / (key + ".pub")))
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == digest


def client_blob(registry, repo, digest):
    out = subprocess.run(["curl", "-sf", "http://%s/v2/%s/blobs/%s" % (registry.host, repo, digest)],
                         stdout=subprocess.PIPE, env=tool_env(), check=True)
    return out.stdout


def test_pull_refuses_unsigned_other_key_tampered_and_misplaced(registry, keys, tmp_path):
    from smith.testutil.debian import require_tools
    require_tools("curl")
    repo = registry.host + "/team/refuse"
    simple_layout(str(tmp_path / "a"), salt="a")
    simple_layout(str(tmp_path / "b"), salt="b")
    signed = push(tmp_path, str(tmp_path / "a"), repo + ":a", "--sign-key", str(keys / "release"))
    assert signed.returncode == 0, signed.stderr
    a = signed.stdout.strip()
    unsigned = push(tmp_path, str(tmp_path / "b"), repo + ":b", password=None)
    assert unsigned.returncode == 0, unsigned.stderr
    b = unsigned.stdout.strip()
    pub = str(keys / "release.pub")

    def refused(digest, why, key=pub, name="out"):
        out = tmp_path / name
        r = pull(tmp_path, "%s@%s" % (repo, digest), out, key)
        assert r.returncode == 1, r.stdout
        assert r.stderr.startswith("smith pull: error: %s@%s: no signature by %s" % (
            repo, digest, key)), r.stderr
        assert why in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert not out.exists() and not [p for p in os.listdir(tmp_path) if ".partial-" in p]

    refused(b, "the image is not signed")
    refused(a, "not made by this key", key=str(keys / "other.pub"))

    client, manifest = sig_manifest(registry, "team/refuse", a)
    original = json.loads(json.dumps(manifest))
    # tampered: another valid-looking signature value
    sig = bytearray(base64.b64decode(manifest["layers"][0]["annotations"][
        signing.SIGNATURE_ANNOTATION]))
    sig[-1] ^= 1
    manifest["layers"][0]["annotations"][signing.SIGNATURE_ANNOTATION] = \
        base64.b64encode(bytes(sig)).decode()
    put_sig_manifest(client, "team/refuse", a, manifest)
    refused(a, "not made by this key, or altered")
    # tampered: the payload swapped for one naming the same digest but unsigned
    put_sig_manifest(client, "team/refuse", a, original)
    assert pull(tmp_path, "%s@%s" % (repo, a), tmp_path / "fine", pub).returncode == 0
    # a valid signature of image A moved to image B: it names another digest
    put_sig_manifest(client, "team/refuse", b, original)
    refused(b, "signs %s, another digest" % a)

    # a valid signature for the same digest, but for another repository
    other_repo = registry.host + "/team/elsewhere"
    moved = push(tmp_path, str(tmp_path / "a"), other_repo + ":a", password=None)
    assert moved.returncode == 0 and moved.stdout.strip() == a
    c = RegistryClient(registry.host)
    for d in [original["config"]] + original["layers"]:
        c.fetch_blob("team/refuse", d["digest"], str(tmp_path / "blob"), d["size"])
        c.upload_blob("team/elsewhere", d["digest"], d["size"], str(tmp_path / "blob"))
    put_sig_manifest(c, "team/elsewhere", a, original)
    r = pull(tmp_path, "%s@%s" % (other_repo, a), tmp_path / "elsewhere", pub)
    assert r.returncode == 1 and "another repository" in r.stderr, r.stderr


def test_verify_runs_before_any_blob_is_fetched(registry, keys, tmp_path):
    simple_layout(str(tmp_path / "img"), salt="early")
    r = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/early:1", password=None)
    digest = r.stdout.strip()
    from smith.registry.platforms import parse_platform
    from smith.registry.pull import pull_image
    from smith.registry.reference import parse_reference
    client = RegistryClient(registry.host)
    fetched = []
    real = client.fetch_blob
    client.fetch_blob = lambda *a, **k: fetched.append(a) or real(*a, **k)  # type: ignore

    def refuse(c, d):
        assert d == digest
        raise signing.SmithError("refused")
    with pytest.raises(signing.SmithError, match="refused"):
        pull_image(client, parse_reference("%s/team/early@%s" % (registry.host, digest)),
                   parse_platform("linux/amd64"), str(tmp_path / "out"), verify=refuse)
    assert fetched == [] and not (tmp_path / "out").exists()


def test_signed_provenance_referrer_next_to_the_sbom(registry, keys, tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    b = LayoutBuilder(str(tmp_path / "img"))
    image = b.image({"hello": b"#!provenance"})
    b.name(image, "latest")
    sbom = b.artifact(image, b'{"spdxVersion":"SPDX-2.3"}', "application/spdx+json")
    b.name(sbom, None)
    b.write()
    params = {"builder": {"id": "https://ci.example/smith"},
              "externalParameters": {"target": "examples/hello:hello", "image_tags": ["1"]},
              "resolvedDependencies": [
                  {"uri": "git+https://git.example/repo", "digest": {"gitCommit": "0" * 40}},
                  {"uri": "examples/hello/hello.lock.json", "digest": {"sha256": "1" * 64}}]}
    (tmp_path / "build.json").write_text(json.dumps(params))
    no_key = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/prov:1",
                  "--provenance", str(tmp_path / "build.json"))
    assert no_key.returncode == 1 and "add --sign-key" in no_key.stderr
    statements = []
    for n in range(2):
        r = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/prov:1",
                 "--sign-key", str(keys / "release"), "--provenance", str(tmp_path / "build.json"))
        assert r.returncode == 0, r.stderr
        digest = r.stdout.strip()
        assert digest == image["digest"]
        client = RegistryClient(registry.host)
        found = fetch_provenance(client, "team/prov", digest,
                                 signing.load_public_key(str(keys / "release.pub")))
        statements.append(found)
    # both publishes carry the same statement, byte for byte apart from the signature
    assert statements[0][0] == statements[1][0]
    stmt = statements[0][0]
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://slsa.dev/provenance/v1"
    assert stmt["subject"] == [{"name": registry.host + "/team/prov",
                                "digest": {"sha256": digest.split(":")[1]}}]
    definition = stmt["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == params["externalParameters"]
    assert definition["resolvedDependencies"] == params["resolvedDependencies"]
    assert stmt["predicate"]["runDetails"] == {"builder": {"id": "https://ci.example/smith"}}
    # the referrers tag lists the SBOM and the provenance
    data, _, _ = client.get_manifest("team/prov", digest.replace(":", "-"))
    kinds = sorted({m.get("artifactType") for m in json.loads(data)["manifests"]})
    assert kinds == sorted([IN_TOTO_MEDIA_TYPE, "application/spdx+json"])
    # the second publish found the same statement signed by the same key and pushed nothing
    assert len(statements[1]) == 1
    # another key does not open the envelope
    with pytest.raises(signing.SmithError, match="no signature by key"):
        fetch_provenance(client, "team/prov", digest,
                         signing.load_public_key(str(keys / "other.pub")))


def test_push_with_a_wrong_passphrase_pushes_nothing(registry, keys, tmp_path):
    simple_layout(str(tmp_path / "img"), salt="wrongpw")
    r = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/wrongpw:1",
             "--sign-key", str(keys / "release"), password="nope")
    assert r.returncode == 1
    assert "wrong password in $SMITH_SIGNING_PASSWORD" in r.stderr and "nope" not in r.stderr
    assert RegistryClient(registry.host).get_manifest("team/wrongpw", "1", missing_ok=True) is None
    r = push(tmp_path, str(tmp_path / "img"), registry.host + "/team/wrongpw:1",
             "--sign-key", str(keys / "release"), password=None)
    assert r.returncode == 1 and "SMITH_SIGNING_PASSWORD" in r.stderr


# ---- interop with a real sigstore implementation (containers/image in skopeo 1.18) -----------
def _policy(tmp_path, pub, identity=None):
    req = {"type": "sigstoreSigned", "keyPath": pub}
    if identity:
        req["signedIdentity"] = identity
    path = tmp_path / ("policy-%s.json" % os.path.basename(pub))
    path.write_text(json.dumps({"default": [{"type": "reject"}],
                                "transports": {"docker": {"": [req]}}}))
    regd = tmp_path / "registries.d"
    regd.mkdir(exist_ok=True)
    (regd / "default.yaml").write_text("default-docker:\n  use-sigstore-attachments: true\n")
    return str(path), str(regd)


def skopeo_copy(skopeo, tmp_path, pub, src, name):
    policy, regd = _policy(tmp_path, pub)
    return subprocess.run(skopeo + ["--policy", policy, "--registries.d", regd, "copy",
                                    "--src-tls-verify=false", "--remove-signatures",
                                    "docker://" + src, "dir:" + str(tmp_path / name)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=tool_env(), timeout=300)


@pytest.mark.debian_mirror
def test_skopeo_verifies_smith_signatures(registry, keys, tmp_path):
    skopeo = sigstore_skopeo()
    repo = registry.host + "/team/interop"
    simple_layout(str(tmp_path / "signed"), salt="interop-signed")
    simple_layout(str(tmp_path / "unsigned"), salt="interop-unsigned")
    simple_layout(str(tmp_path / "other"), salt="interop-other")
    r = push(tmp_path, str(tmp_path / "signed"), repo + ":signed", "--sign-key",
             str(keys / "release"))
    assert r.returncode == 0, r.stderr
    signed = r.stdout.strip()
    r = push(tmp_path, str(tmp_path / "unsigned"), repo + ":unsigned", password=None)
    assert r.returncode == 0, r.stderr
    r = push(tmp_path, str(tmp_path / "other"), repo + ":other", "--sign-key", str(keys / "other"))
    assert r.returncode == 0, r.stderr
    pub = str(keys / "release.pub")

    for src in (repo + ":signed", "%s@%s" % (repo, signed)):
        ok = skopeo_copy(skopeo, tmp_path, pub, src, "ok")
        assert ok.returncode == 0, ok.stderr
    no = skopeo_copy(skopeo, tmp_path, pub, repo + ":unsigned", "no1")
    assert no.returncode != 0 and "A signature was required, but no signature exists" in no.stderr
    no = skopeo_copy(skopeo, tmp_path, pub, repo + ":other", "no2")
    assert no.returncode != 0 and "cryptographic signature verification failed" in no.stderr

    # tampered: skopeo refuses what smith refuses
    client, manifest = sig_manifest(registry, "team/interop", signed)
    sig = bytearray(base64.b64decode(manifest["layers"][0]["annotations"][
        signing.SIGNATURE_ANNOTATION]))
    sig[-1] ^= 1
    manifest["layers"][0]["annotations"][signing.SIGNATURE_ANNOTATION] = \
        base64.b64encode(bytes(sig)).decode()
    put_sig_manifest(client, "team/interop", signed, manifest)
    no = skopeo_copy(skopeo, tmp_path, pub, repo + ":signed", "no3")
    assert no.returncode != 0 and "Source image rejected" in no.stderr, no.stderr
    r = pull(tmp_path, "%s@%s" % (repo, signed), tmp_path / "smith-no", pub)
    assert r.returncode == 1 and "no signature by" in r.stderr


@pytest.mark.debian_mirror
def test_a_signed_index_verifies_per_platform_and_whole(registry, keys, tmp_path):
    """skopeo copying one platform out of an index checks that platform's manifest signature,
    `--all` the index's: a signed push of an index signs both (as `cosign sign --recursive`)."""
    skopeo = sigstore_skopeo()
    b = LayoutBuilder(str(tmp_path / "multi"))
    amd64 = b.image({"hello": b"amd64 signed index"})
    arm64 = b.image({"hello": b"arm64 signed index"}, arch="arm64", variant="v8")
    b.name(b.index([amd64, arm64]), "latest")
    b.write()
    repo = registry.host + "/team/multi"
    r = push(tmp_path, str(tmp_path / "multi"), repo + ":v1", "--sign-key", str(keys / "release"))
    assert r.returncode == 0, r.stderr
    index = r.stdout.strip()
    signed = re.findall(r"@(sha256:[0-9a-f]{64}): 1 signature\(s\) added", r.stderr)
    assert signed == [index, amd64["digest"], arm64["digest"]], r.stderr
    pub = str(keys / "release.pub")
    ok = skopeo_copy(skopeo, tmp_path, pub, repo + ":v1", "one-platform")
    assert ok.returncode == 0, ok.stderr
    policy, regd = _policy(tmp_path, pub)
    whole = subprocess.run(skopeo + ["--policy", policy, "--registries.d", regd, "copy", "--all",
                                     "--src-tls-verify=false", "--remove-signatures",
                                     "docker://%s:v1" % repo, "oci:" + str(tmp_path / "all")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=tool_env(), timeout=300)
    assert whole.returncode == 0, whole.stderr
    for desc, platform in ((amd64, "linux/amd64"), (arm64, "linux/arm64/v8")):
        got = run_smith(["pull", "--verify-key", pub, "--platform", platform,
                         "%s@%s" % (repo, desc["digest"]), str(tmp_path / desc["digest"][7:20])],
                        str(tmp_path))
        assert got.returncode == 0, got.stderr


@pytest.mark.debian_mirror
def test_skopeo_signs_with_a_smith_keygen_key(registry, keys, tmp_path):
    skopeo = sigstore_skopeo()
    desc = simple_layout(str(tmp_path / "img"), salt="signed-by-skopeo")
    (tmp_path / "pass").write_text(PASSWORD)
    _, regd = _policy(tmp_path, str(keys / "release.pub"))
    dest = registry.host + "/team/byskopeo:v1"
    r = subprocess.run(skopeo + ["--registries.d", regd, "copy", "--dest-tls-verify=false",
                                 "--sign-by-sigstore-private-key", str(keys / "release"),
                                 "--sign-passphrase-file", str(tmp_path / "pass"),
                                 "oci:%s:latest" % (tmp_path / "img"), "docker://" + dest],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=tool_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    ok = pull(tmp_path, "%s/team/byskopeo@%s" % (registry.host, desc["digest"]),
              tmp_path / "out", str(keys / "release.pub"))
    assert ok.returncode == 0, ok.stderr
    no = pull(tmp_path, "%s/team/byskopeo@%s" % (registry.host, desc["digest"]),
              tmp_path / "out2", str(keys / "other.pub"))
    assert no.returncode == 1 and "no signature by" in no.stderr
    # a wrong passphrase: skopeo cannot open the smith key either
    (tmp_path / "pass").write_text("wrong")
    r = subprocess.run(skopeo + ["--registries.d", regd, "copy", "--dest-tls-verify=false",
                                 "--sign-by-sigstore-private-key", str(keys / "release"),
                                 "--sign-passphrase-file", str(tmp_path / "pass"),
                                 "oci:%s:latest" % (tmp_path / "img"), "docker://" + dest],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=tool_env(), timeout=300)
    assert r.returncode != 0
