"""Signatures attached the way cosign and containers/image store them in a registry.

A manifest digest `sha256:HEX` has its signatures in the OCI manifest tagged `sha256-HEX.sig` of
the same repository: one layer per signature, of media type
`application/vnd.dev.cosign.simplesigning.v1+json`, whose blob is the simple-signing payload and
whose annotation `dev.cosignproject.cosign/signature` is the base64 DER signature. A new signature
is appended to the layers already there (and to the config's rootfs.diff_ids), as cosign and
containers/image do; a signature already present is not added twice.

Verification trusts nothing it reads: the signature manifest and its blobs come through the
hardened client (digest-checked, size-capped), payloads are parsed strictly, and a signature counts
only if it verifies with the key, names the digest asked for and names the same repository."""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import base64
import json
import os

from smith import safe_json
from smith.errors import SmithError
from smith.registry import media_types, signing
from smith.registry.client import RegistryClient
from smith.registry.descriptors import check_manifest
from smith.registry.digests import check_digest, digest_of
from smith.registry.reference import parse_reference
from smith.text import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MAX_SIGNATURES = 256  # layers of one .sig manifest looked at
MAX_SIGNATURE_BLOB = 64 << 10


def signature_tag(digest: str) -> str:
    """`sha256-HEX.sig`: where cosign keeps the signatures of `digest`."""
    return check_digest(digest, "signed digest").replace(":", "-") + ".sig"


def put_blob(client: RegistryClient, repo: str, data: bytes) -> str:
    import shutil  # with tempfile (random, bz2, lzma) ~12 M instructions: only when signing
    import tempfile
    digest = digest_of(data)
    tmp = tempfile.mkdtemp(prefix="smith-sig-")
    try:
        path = os.path.join(tmp, "blob")
        with open(path, "wb") as f:
            f.write(data)
        client.upload_blob(repo, digest, len(data), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return digest


def get_blob(client: RegistryClient, repo: str, descriptor: dict, cap: int, what: str) -> bytes:
    import shutil
    import tempfile
    if descriptor["size"] > cap:
        raise SmithError("%s: blob %s has %d bytes, more than the %d a signature may have" % (
            what, descriptor["digest"], descriptor["size"], cap))
    tmp = tempfile.mkdtemp(prefix="smith-sig-")
    try:
        path = os.path.join(tmp, "blob")
        client.fetch_blob(repo, descriptor["digest"], path, descriptor["size"])
        with open(path, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _signature_manifest(client: RegistryClient, repo: str, digest: str
                        ) -> Optional[Tuple[dict, str]]:
    tag = signature_tag(digest)
    what = "%s/%s:%s" % (client.registry, repo, tag)
    found = client.get_manifest(repo, tag, missing_ok=True)
    if found is None:
        return None
    data, media_type, _ = found
    if media_type != media_types.OCI_MANIFEST:
        raise SmithError("%s: a %s, not the OCI manifest of cosign signatures" % (
            what, printable(media_type, 100)))
    return check_manifest(safe_json.loads(data, what), what), what


def attach_signature(client: RegistryClient, repo: str, digest: str, payload: bytes,
                     signature: bytes) -> bool:
    """Add one signature of `digest` to its `.sig` manifest; False if it was already there."""
    annotations = {signing.SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}
    found = _signature_manifest(client, repo, digest)
    payload_digest = digest_of(payload)
    if found:
        manifest, what = found
        for layer in manifest["layers"]:
            if layer.get("mediaType") == signing.SIMPLESIGNING_MEDIA_TYPE and \
                    layer["digest"] == payload_digest and layer.get("annotations") == annotations:
                return False
        config = safe_json.loads(get_blob(client, repo, manifest["config"], 1 << 20, what),
                                 what + ": config")
    else:
        manifest = {"schemaVersion": 2, "mediaType": media_types.OCI_MANIFEST,
                    "config": None, "layers": []}
        config = {"architecture": "", "os": "", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": []}}
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    if not isinstance(rootfs, dict) or not isinstance(rootfs.setdefault("diff_ids", []), list):
        raise SmithError("%s/%s:%s: the signature config's rootfs is malformed" % (
            client.registry, repo, signature_tag(digest)))
    put_blob(client, repo, payload)
    manifest["layers"].append({"mediaType": signing.SIMPLESIGNING_MEDIA_TYPE,
                               "digest": payload_digest, "size": len(payload),
                               "annotations": annotations})
    rootfs["diff_ids"].append(payload_digest)
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest["config"] = {"mediaType": OCI_CONFIG, "digest": put_blob(client, repo, config_bytes),
                          "size": len(config_bytes)}
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    client.put_manifest(repo, signature_tag(digest), body, media_types.OCI_MANIFEST)
    return True


def sign_and_attach(client: RegistryClient, registry: str, repo: str, digest: str,
                    private_key: Any, identities: List[str]) -> int:
    """Sign `digest` once per docker-reference in `identities` (e.g. each pushed tag, so the
    default `matchRepoDigestOrExact` identity of policy.json accepts a pull by that tag);
    return how many signatures were added."""
    added = 0
    for identity in identities:
        payload = signing.simple_signing_payload(digest, identity)
        if _already_signed(client, repo, digest, payload, private_key):
            continue
        added += attach_signature(client, repo, digest, payload,
                                  signing.sign(private_key, payload))
    return added


def _already_signed(client: RegistryClient, repo: str, digest: str, payload: bytes,
                    private_key: Any) -> bool:
    """A re-publish adds nothing: a valid signature of this very payload by this key is there."""
    found = _signature_manifest(client, repo, digest)
    if not found:
        return False
    public = private_key.public_key()
    for layer in found[0]["layers"][:MAX_SIGNATURES]:
        if layer["digest"] != digest_of(payload):
            continue
        sig = _decode_signature(layer)
        if sig is not None and signing.verify(public, payload, sig):
            return True
    return False


def _decode_signature(layer: dict) -> Optional[bytes]:
    text = (layer.get("annotations") or {}).get(signing.SIGNATURE_ANNOTATION)
    if not isinstance(text, str) or len(text) > 4096:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _same_repository(signed_reference: str, registry: str, repo: str) -> bool:
    try:
        signed = parse_reference(signed_reference)
    except SmithError:
        return False
    return (signed.registry, signed.repository) == (registry, repo)


def verify_signed(client: RegistryClient, registry: str, repo: str, digest: str,
                  public_key: Any, key_name: str, what: str) -> str:
    """Raise unless `digest` carries a valid signature by `public_key` that names this digest
    and this repository; return the docker-reference it signs."""
    check_digest(digest, what)
    found = _signature_manifest(client, repo, digest)
    if not found:
        raise SmithError("%s: no signature by %s: the image is not signed (no %s in %s/%s)" % (
            what, key_name, signature_tag(digest), registry, repo))
    manifest, where = found
    reasons: List[str] = []
    for n, layer in enumerate(manifest["layers"][:MAX_SIGNATURES]):
        if layer.get("mediaType") != signing.SIMPLESIGNING_MEDIA_TYPE:
            continue
        sig = _decode_signature(layer)
        if sig is None:
            reasons.append("signature %d: no valid %s annotation" % (
                n + 1, signing.SIGNATURE_ANNOTATION))
            continue
        payload = get_blob(client, repo, layer, MAX_SIGNATURE_BLOB, where)
        if not signing.verify(public_key, payload, sig):
            reasons.append("signature %d: not made by this key, or altered" % (n + 1))
            continue
        try:
            signed_digest, reference = signing.parse_payload(
                payload, "%s: signature %d" % (where, n + 1))
        except SmithError as e:
            reasons.append(str(e))
            continue
        if signed_digest != digest:
            reasons.append("signature %d: signs %s, another digest" % (
                n + 1, printable(signed_digest, 80)))
            continue
        if not _same_repository(reference, registry, repo):
            reasons.append("signature %d: signs the image as %s, another repository" % (
                n + 1, printable(reference, 200)))
            continue
        return reference
    raise SmithError("%s: no signature by %s (%s) for this digest: %s" % (
        what, key_name, signing.fingerprint(public_key),
        "; ".join(reasons[:5]) or "the %s manifest holds no cosign signature" % where))
