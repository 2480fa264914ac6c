"""Keys and signatures in the sigstore/cosign format, by key (no transparency log).

Keys (what `cosign generate-key-pair`, `skopeo generate-sigstore-key` and
containers/image's `--sign-by-sigstore-private-key` read and write):
- the public key: a PEM "PUBLIC KEY" (SubjectPublicKeyInfo), ECDSA P-256;
- the private key: a PEM "ENCRYPTED SIGSTORE PRIVATE KEY" whose body is the JSON of
  go-securesystemslib's `encrypted` package: {"kdf": {"name": "scrypt", "params": {"N", "r", "p"},
  "salt"}, "cipher": {"name": "nacl/secretbox", "nonce"}, "ciphertext"}; the secretbox key is
  scrypt(passphrase, salt, N, r, p, 32) and the plaintext is the PKCS#8 DER of the key. Keys are
  written with N=32768, r=8, p=1 (the only parameters older readers such as skopeo 1.9 accept);
  N=65536 and N=131072 (newer cosign) are read too.

Signatures (cosign "simple signing"): the payload is JSON {"critical": {"identity":
{"docker-reference"}, "image": {"docker-manifest-digest"}, "type": "cosign container image
signature"}, "optional": {...}}, signed with ECDSA P-256 over SHA-256; the signature is the DER
encoding, stored base64 in the annotation `dev.cosignproject.cosign/signature` of a layer of the
manifest tagged `sha256-<hex>.sig` (see sigstore_attach.py).

The cryptography comes from libraries (`cryptography` for ECDSA, scrypt; PyNaCl for secretbox),
imported when first needed: the zipapp `dist/smith` bundles only pure-Python packages, so on a
plain Debian python3 they come from python3-cryptography and python3-nacl."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import base64
import hashlib
import json
import os
import re

from smith import safe_json
from smith.errors import SmithError
from smith.registry.digests import check_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

PASSWORD_ENV = "SMITH_SIGNING_PASSWORD"
SIGNATURE_TYPE = "cosign container image signature"
SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PRIVATE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PRIVATE_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"  # cosign before 1.x renamed it
PUBLIC_PEM_TYPE = "PUBLIC KEY"

# (N, r, p) that go-securesystemslib's `encrypted` package reads: Legacy, Standard, OWASP.
SCRYPT_WRITE = (32768, 8, 1)
SCRYPT_READ = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}
SALT_BYTES, NONCE_BYTES, KEY_BYTES = 32, 24, 32
MAX_KEY_FILE = 64 << 10
MAX_PAYLOAD = 64 << 10

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)\r?\n-----END \1-----", re.S)


# ---- the libraries ---------------------------------------------------------------------------
def _crypto():
    try:
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: F401
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # noqa: F401
    except ImportError:
        raise SmithError("signing and verifying need the Python package 'cryptography', which "
                         "this smith was not built with: install it (Debian: apt-get install "
                         "python3-cryptography; or pip install cryptography)") from None
    import cryptography.hazmat.primitives as primitives
    return primitives


def _secretbox():
    try:
        from nacl.secret import SecretBox
    except ImportError:
        raise SmithError("encrypted sigstore keys need the Python package 'PyNaCl' (nacl/"
                         "secretbox), which this smith was not built with: install it (Debian: "
                         "apt-get install python3-nacl; or pip install PyNaCl)") from None
    return SecretBox


# ---- PEM ---------------------------------------------------------------------------------------
def pem_encode(kind: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, "\n".join(lines), kind)).encode()


def pem_decode(data: bytes, what: str) -> Tuple[str, bytes]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise SmithError("%s: not a PEM file (it is not ASCII text)" % what) from None
    m = _PEM.search(text)
    if not m:
        raise SmithError("%s: not a PEM file (no -----BEGIN ...----- block)" % what)
    try:
        der = base64.b64decode("".join(m.group(2).split()), validate=True)
    except ValueError:
        raise SmithError("%s: the PEM block is not valid base64" % what) from None
    return m.group(1), der


def _read_small(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise SmithError("%s %s: cannot read (%s)" % (what, path, e.strerror or e)) from None
    if len(data) > MAX_KEY_FILE:
        raise SmithError("%s %s: larger than %d bytes; not a key" % (what, path, MAX_KEY_FILE))
    return data


# ---- go-securesystemslib `encrypted` -------------------------------------------------------------
def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    kdf = _crypto().kdf.scrypt.Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p)
    return kdf.derive(password)


def encrypt(plaintext: bytes, password: bytes, _salt: Optional[bytes] = None,
            _nonce: Optional[bytes] = None) -> bytes:
    """The JSON document of go-securesystemslib's encrypted.Encrypt (Legacy scrypt parameters)."""
    salt = _salt if _salt is not None else os.urandom(SALT_BYTES)
    nonce = _nonce if _nonce is not None else os.urandom(NONCE_BYTES)
    n, r, p = SCRYPT_WRITE
    box = _secretbox()(_scrypt(password, salt, n, r, p))
    sealed = box.encrypt(plaintext, nonce).ciphertext  # Poly1305 tag + XSalsa20 ciphertext
    doc = {"kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p},
                   "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(sealed).decode()}
    return json.dumps(doc, separators=(",", ":")).encode()


def _b64_field(obj: dict, key: str, what: str, size: Optional[int] = None) -> bytes:
    text = safe_json.field(obj, key, str, what)
    try:
        value = base64.b64decode(text, validate=True)
    except ValueError:
        raise SmithError("%s: %s is not valid base64" % (what, key)) from None
    if size is not None and len(value) != size:
        raise SmithError("%s: %s has %d bytes, expected %d" % (what, key, len(value), size))
    return value


def decrypt(data: bytes, password: bytes, what: str) -> bytes:
    """The plaintext of an encrypted.Encrypt document; a wrong password is a clear error."""
    doc = safe_json.loads(data, what, max_bytes=MAX_KEY_FILE)
    kdf = safe_json.field(doc, "kdf", dict, what)
    cipher = safe_json.field(doc, "cipher", dict, what)
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise SmithError("%s: unsupported encryption (kdf %r, cipher %r); smith reads scrypt + "
                         "nacl/secretbox keys (cosign, skopeo)" % (
                             what, str(kdf.get("name"))[:40], str(cipher.get("name"))[:40]))
    params = safe_json.field(kdf, "params", dict, what)
    npr = tuple(safe_json.field(params, k, int, what + ": kdf params") for k in ("N", "r", "p"))
    if npr not in SCRYPT_READ:
        raise SmithError("%s: unsupported scrypt parameters N=%d r=%d p=%d" % ((what,) + npr))
    salt = _b64_field(kdf, "salt", what)
    nonce = _b64_field(cipher, "nonce", what, NONCE_BYTES)
    sealed = _b64_field(doc, "ciphertext", what)
    box = _secretbox()(_scrypt(password, salt, *npr))
    from nacl.exceptions import CryptoError
    try:
        return box.decrypt(sealed, nonce)
    except CryptoError:
        raise SmithError("%s: cannot decrypt the private key: wrong password in $%s (or the key "
                         "file is damaged)" % (what, PASSWORD_ENV)) from None


# ---- keys ----------------------------------------------------------------------------------------
def password_from_env(environ: Optional[Dict[str, str]] = None, new: bool = False) -> bytes:
    """The key passphrase: only ever from $SMITH_SIGNING_PASSWORD, never an argument."""
    env = os.environ if environ is None else environ
    if PASSWORD_ENV not in env:
        raise SmithError("set the private key's passphrase in the environment variable %s "
                         "(it is never taken as an argument)" % PASSWORD_ENV)
    value = env[PASSWORD_ENV]
    if new and not value:
        raise SmithError("%s is empty; give the new key a passphrase" % PASSWORD_ENV)
    return value.encode("utf-8")


def generate_keypair(password: bytes) -> Tuple[bytes, bytes]:
    """(private PEM, encrypted; public PEM) of a new ECDSA P-256 key."""
    p = _crypto()
    key = p.asymmetric.ec.generate_private_key(p.asymmetric.ec.SECP256R1())
    der = key.private_bytes(p.serialization.Encoding.DER, p.serialization.PrivateFormat.PKCS8,
                            p.serialization.NoEncryption())
    return (pem_encode(PRIVATE_PEM_TYPE, encrypt(der, password)),
            public_pem(key.public_key()))


def public_pem(public_key: Any) -> bytes:
    p = _crypto()
    return public_key.public_bytes(p.serialization.Encoding.PEM,
                                   p.serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_p256(key: Any, what: str) -> Any:
    ec = _crypto().asymmetric.ec
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) or \
            key.curve.name != "secp256r1":
        raise SmithError("%s: smith signs and verifies with ECDSA P-256 keys only (cosign's "
                         "default); this is a %s" % (what, _describe(key)))
    return key


def _describe(key: Any) -> str:
    curve = getattr(key, "curve", None)
    return "%s key%s" % (type(key).__name__.lstrip("_"), " on %s" % curve.name if curve else "")


def load_private_key(path: str, password: bytes) -> Any:
    what = "signing key %s" % path
    kind, body = pem_decode(_read_small(path, "signing key"), what)
    p = _crypto()
    if kind in (PRIVATE_PEM_TYPE, LEGACY_PRIVATE_PEM_TYPE):
        der = decrypt(body, password, what)
    elif kind in ("PRIVATE KEY", "EC PRIVATE KEY"):
        raise SmithError("%s: the private key is not encrypted; write one with `smith keygen` "
                         "(or cosign generate-key-pair) so it is protected by a passphrase" % what)
    else:
        raise SmithError("%s: a PEM %r block, not an %r" % (what, kind, PRIVATE_PEM_TYPE))
    try:
        key = p.serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as e:
        raise SmithError("%s: the decrypted key is not a PKCS#8 private key (%s)" % (what, e)) \
            from None
    return _check_p256(key, what)


def load_public_key(path: str) -> Any:
    what = "public key %s" % path
    kind, body = pem_decode(_read_small(path, "public key"), what)
    if kind != PUBLIC_PEM_TYPE:
        raise SmithError("%s: a PEM %r block, not a %r (pass the .pub file)" % (
            what, kind, PUBLIC_PEM_TYPE))
    try:
        key = _crypto().serialization.load_der_public_key(body)
    except (ValueError, TypeError) as e:
        raise SmithError("%s: not a public key (%s)" % (what, e)) from None
    return _check_p256(key, what)


def fingerprint(public_key: Any) -> str:
    """sha256 of the DER SubjectPublicKeyInfo, as `cosign public-key` users compare keys."""
    p = _crypto()
    der = public_key.public_bytes(p.serialization.Encoding.DER,
                                  p.serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


# ---- signing -------------------------------------------------------------------------------------
def _ecdsa():
    p = _crypto()
    try:  # RFC 6979 where the library has it (cryptography >= 44): the same bytes every time
        return p.asymmetric.ec.ECDSA(p.hashes.SHA256(), deterministic_signing=True)
    except Exception:
        return p.asymmetric.ec.ECDSA(p.hashes.SHA256())


def sign(private_key: Any, data: bytes) -> bytes:
    """An ASN.1 DER ECDSA signature of SHA-256(data)."""
    return private_key.sign(data, _ecdsa())


def verify(public_key: Any, data: bytes, signature: bytes) -> bool:
    p = _crypto()
    from cryptography.exceptions import InvalidSignature
    try:
        public_key.verify(signature, data, p.asymmetric.ec.ECDSA(p.hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def simple_signing_payload(manifest_digest: str, docker_reference: str,
                           optional: Optional[Dict[str, Any]] = None) -> bytes:
    """The cosign/containers-image payload for `docker_reference` at `manifest_digest`;
    byte-reproducible (no timestamp unless SOURCE_DATE_EPOCH is set)."""
    check_digest(manifest_digest, "signed manifest digest")
    extra: Dict[str, Any] = {"creator": "smith"}
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit() and int(epoch) > 0:  # 0: smith's default, "no time"
        extra["timestamp"] = int(epoch)
    extra.update(optional or {})
    doc = {"critical": {"identity": {"docker-reference": docker_reference},
                        "image": {"docker-manifest-digest": manifest_digest},
                        "type": SIGNATURE_TYPE},
           "optional": extra}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def parse_payload(payload: bytes, what: str) -> Tuple[str, str]:
    """(docker-manifest-digest, docker-reference) of a simple-signing payload, checked as strictly
    as containers/image does: exactly the critical fields, the cosign type."""
    doc = safe_json.loads(payload, what, max_bytes=MAX_PAYLOAD)
    if set(doc) - {"critical", "optional"} or "critical" not in doc:
        raise SmithError("%s: expected exactly 'critical' and 'optional'" % what)
    critical = safe_json.field(doc, "critical", dict, what)
    if set(critical) != {"identity", "image", "type"}:
        raise SmithError("%s: 'critical' must hold exactly identity, image and type" % what)
    if critical["type"] != SIGNATURE_TYPE:
        raise SmithError("%s: signature type %r, not %r" % (
            what, str(critical["type"])[:80], SIGNATURE_TYPE))
    image = safe_json.field(critical, "image", dict, what)
    identity = safe_json.field(critical, "identity", dict, what)
    if set(image) != {"docker-manifest-digest"} or set(identity) != {"docker-reference"}:
        raise SmithError("%s: unexpected fields in critical.image / critical.identity" % what)
    digest = safe_json.field(image, "docker-manifest-digest", str, what)
    reference = safe_json.field(identity, "docker-reference", str, what)
    return digest, reference
