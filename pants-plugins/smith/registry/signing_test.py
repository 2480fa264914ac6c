"""Keys and payloads of smith.registry.signing, without a registry: the encrypted key format
against go-securesystemslib's own test vectors, `smith keygen`, the payload's strict parsing."""
import json
import os
import stat

import pytest

from smith.errors import SmithError
from smith.registry import signing
from smith.testutil.sigstore_skopeo import run_smith

# Test vectors of github.com/secure-systems-lab/go-securesystemslib encrypted/encrypted_test.go
# (the package cosign, sigstore's cryptoutils and containers/image use): passphrase
# "supersecret", plaintext "reallyimportant" (TestDecrypt); the kdfVectors of the three parameter
# strengths went through encrypted.Marshal, so theirs is the JSON of the plaintext's base64.
PLAIN = b"reallyimportant"
MARSHALLED = b'"cmVhbGx5aW1wb3J0YW50"'
GO_VECTORS = [
    b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0e'
    b'iLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ'
    b'1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}',
    b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPI'
    b'BUofMjcpEfrLnfY4uA="},"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ'
    b'148U1MX"},"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}',
    b'{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6Gz'
    b'aOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IG'
    b'Q8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}',
    b'{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DT'
    b'ito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGn'
    b'TV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}',
]


@pytest.mark.parametrize("vector,plain", zip(GO_VECTORS, [PLAIN] + [MARSHALLED] * 3))
def test_decrypts_go_securesystemslib_vectors(vector, plain):
    assert signing.decrypt(vector, b"supersecret", "vector") == plain
    with pytest.raises(SmithError, match="wrong password"):
        signing.decrypt(vector, b"supersecreT", "vector")


def test_refuses_unsupported_scrypt_parameters():
    # go-securesystemslib's TestUnsupportedKDFParameters: N=99 r=99 p=99 is refused, not run
    doc = json.loads(GO_VECTORS[0])
    doc["kdf"]["params"] = {"N": 99, "r": 99, "p": 99}
    with pytest.raises(SmithError, match="unsupported scrypt parameters"):
        signing.decrypt(json.dumps(doc).encode(), b"supersecret", "vector")


def test_encrypt_writes_the_go_format_with_the_legacy_parameters():
    data = signing.encrypt(b"reallyimportant", b"supersecret", _salt=b"s" * 32, _nonce=b"n" * 24)
    doc = json.loads(data)
    assert list(doc) == ["kdf", "cipher", "ciphertext"]  # Go's field order
    assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert doc["cipher"]["name"] == "nacl/secretbox"
    assert len(__import__("base64").b64decode(doc["ciphertext"])) == 15 + 16  # Poly1305 tag
    assert signing.decrypt(data, b"supersecret", "x") == b"reallyimportant"
    tampered = dict(doc, ciphertext=doc["ciphertext"][:-6] + "AAAA==")
    with pytest.raises(SmithError, match="cannot decrypt"):
        signing.decrypt(json.dumps(tampered).encode(), b"supersecret", "x")


def test_keypair_round_trip_sign_and_verify(tmp_path):
    private, public = signing.generate_keypair(b"pw")
    assert private.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    (tmp_path / "k").write_bytes(private)
    (tmp_path / "k.pub").write_bytes(public)
    key = signing.load_private_key(str(tmp_path / "k"), b"pw")
    pub = signing.load_public_key(str(tmp_path / "k.pub"))
    assert signing.fingerprint(pub) == signing.fingerprint(key.public_key())
    sig = signing.sign(key, b"payload")
    assert signing.verify(pub, b"payload", sig)
    assert not signing.verify(pub, b"payloaD", sig)
    assert not signing.verify(pub, b"payload", sig[:-1] + bytes([sig[-1] ^ 1]))
    with pytest.raises(SmithError, match="wrong password in \\$SMITH_SIGNING_PASSWORD"):
        signing.load_private_key(str(tmp_path / "k"), b"wrong")
    with pytest.raises(SmithError, match="not a 'PUBLIC KEY'"):
        signing.load_public_key(str(tmp_path / "k"))
    with pytest.raises(SmithError, match="not an 'ENCRYPTED SIGSTORE PRIVATE KEY'"):
        signing.load_private_key(str(tmp_path / "k.pub"), b"pw")


def test_other_curves_and_plain_keys_are_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    k = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "p384.pub").write_bytes(k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(SmithError, match="ECDSA P-256 keys only"):
        signing.load_public_key(str(tmp_path / "p384.pub"))
    plain = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    (tmp_path / "plain").write_bytes(plain)
    with pytest.raises(SmithError, match="not encrypted"):
        signing.load_private_key(str(tmp_path / "plain"), b"")
    (tmp_path / "junk").write_bytes(b"\xff" * 100)
    with pytest.raises(SmithError, match="not a PEM file"):
        signing.load_public_key(str(tmp_path / "junk"))


def test_payload_is_reproducible_and_parsed_strictly(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    digest = "sha256:" + "a" * 64
    one = signing.simple_signing_payload(digest, "r.example/app:1")
    assert one == signing.simple_signing_payload(digest, "r.example/app:1")
    doc = json.loads(one)
    assert doc["critical"] == {"identity": {"docker-reference": "r.example/app:1"},
                               "image": {"docker-manifest-digest": digest},
                               "type": "cosign container image signature"}
    assert "timestamp" not in doc["optional"]
    assert signing.parse_payload(one, "p") == (digest, "r.example/app:1")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert json.loads(signing.simple_signing_payload(digest, "x/y"))["optional"]["timestamp"] \
        == 1700000000
    for bad in ({"critical": dict(doc["critical"], extra=1), "optional": {}},
                {"critical": dict(doc["critical"], type="atomic container signature")},
                {"critical": doc["critical"], "optional": {}, "more": 1},
                {"optional": {}}):
        with pytest.raises(SmithError):
            signing.parse_payload(json.dumps(bad).encode(), "p")


def test_keygen_cli(tmp_path):
    out = str(tmp_path / "keys" / "release")
    os.makedirs(os.path.dirname(out))
    no_env = run_smith(["keygen", "--output", out], str(tmp_path))
    assert no_env.returncode == 1
    assert "smith keygen: error: set the private key's passphrase in the environment variable " \
           "SMITH_SIGNING_PASSWORD" in no_env.stderr
    assert not os.path.exists(out)
    empty = run_smith(["keygen", "--output", out], str(tmp_path), SMITH_SIGNING_PASSWORD="")
    assert empty.returncode == 1 and "is empty" in empty.stderr
    made = run_smith(["keygen", "--output", out], str(tmp_path), SMITH_SIGNING_PASSWORD="s3cret")
    assert made.returncode == 0, made.stderr
    assert "sha256:" in made.stderr and "s3cret" not in made.stderr + made.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out + ".pub").st_mode) == 0o644
    key = signing.load_private_key(out, b"s3cret")
    assert signing.fingerprint(key.public_key()) == signing.fingerprint(
        signing.load_public_key(out + ".pub"))
    before = open(out, "rb").read()
    again = run_smith(["keygen", "--output", out], str(tmp_path), SMITH_SIGNING_PASSWORD="x")
    assert again.returncode == 1 and "never overwrites" in again.stderr
    assert open(out, "rb").read() == before
    # the passphrase is never an argument
    arg = run_smith(["keygen", "--output", out + "2", "--password", "x"], str(tmp_path),
                    SMITH_SIGNING_PASSWORD="x")
    assert arg.returncode == 1 and "unrecognized arguments" in arg.stderr
