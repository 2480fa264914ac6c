"""SLSA provenance of a pushed image: an in-toto Statement v1 with an SLSA v1 predicate, wrapped in
a DSSE envelope signed with the publishing key, pushed as an OCI 1.1 artifact whose `subject` is
the image (a referrer, next to the SBOM; registries without the referrers API get the
`sha256-HEX` index tag, as for the SBOM).

The statement is byte-reproducible: JSON with sorted keys and fixed separators, built only from
the build parameters and the image digest; no time unless SOURCE_DATE_EPOCH is set. Only the
DSSE signature differs between two publishes of the same build (and not even that where the
ECDSA library signs deterministically).

Build parameters (`smith push --provenance PARAMS.json`, written by `pants publish`):
    {"buildType": URI, "builder": {"id": URI},
     "externalParameters": {...},           # the Pants target, its build fields
     "internalParameters": {...},           # optional
     "resolvedDependencies": [ResourceDescriptor, ...]}   # lockfiles' digests, the commit
"""
from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import base64
import json
import os
import time

from smith import safe_json
from smith.errors import SmithError
from smith.registry import media_types, signing
from smith.registry.client import RegistryClient
from smith.registry.descriptors import check_manifest
from smith.registry.digests import check_digest, digest_of
from smith.registry.layout import select_image
from smith.registry.push import Pusher
from smith.registry.reference import Reference
from smith.registry.signatures import get_blob, put_blob

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
DEFAULT_BUILD_TYPE = "https://github.com/smith-for-pants/smith/pants-publish/v1"
MAX_PARAMS = 1 << 20
MAX_ENVELOPE = 4 << 20


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_build_parameters(path: str) -> dict:
    what = "--provenance %s" % path
    doc = safe_json.load_file(path, what, max_bytes=MAX_PARAMS)
    known = {"buildType", "builder", "externalParameters", "internalParameters",
             "resolvedDependencies"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SmithError("%s: unknown field(s) %s; expected %s" % (
            what, ", ".join(unknown), ", ".join(sorted(known))))
    safe_json.field(doc, "buildType", str, what, required=False)
    builder = safe_json.field(doc, "builder", dict, what)
    safe_json.field(builder, "id", str, what + ": builder")
    safe_json.field(doc, "externalParameters", dict, what)
    safe_json.field(doc, "internalParameters", dict, what, required=False)
    for n, dep in enumerate(safe_json.field(doc, "resolvedDependencies", list, what,
                                            required=False) or []):
        where = "%s: resolvedDependencies[%d]" % (what, n)
        if not isinstance(dep, dict):
            raise SmithError("%s: expected an object (a ResourceDescriptor)" % where)
        digests = safe_json.field(dep, "digest", dict, where, required=False) or {}
        if not all(isinstance(v, str) for v in digests.values()):
            raise SmithError("%s: digest values must be strings" % where)
    return doc


def git_source(directory: str) -> Optional[dict]:
    """The commit checked out in `directory` as a ResourceDescriptor (uri: the `origin` remote,
    never the local path, so the statement does not depend on where the checkout is); None if
    `directory` is not a git checkout with a commit."""
    import subprocess

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", directory, *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, timeout=60)
        except OSError as e:
            raise SmithError("--source-repo %s: cannot run git (%s)" % (directory, e)) from None
        if out.returncode != 0:
            return ""
        return out.stdout.strip()
    commit = git("rev-parse", "--verify", "HEAD^{commit}")
    if len(commit) not in (40, 64) or any(c not in "0123456789abcdef" for c in commit):
        return None
    remote = git("config", "--get", "remote.origin.url")
    dep: Dict[str, Any] = {"uri": "git+" + remote if remote else "git:HEAD",
                           "digest": {"gitCommit": commit}}
    if git("status", "--porcelain", "--untracked-files=no"):
        dep["annotations"] = {"uncommittedChanges": True}
    return dep


def statement(build: dict, subject_name: str, manifest_digest: str) -> bytes:
    """The in-toto statement (canonical bytes) for the image `manifest_digest`."""
    algorithm, _, hexpart = check_digest(manifest_digest, "provenance subject").partition(":")
    definition: Dict[str, Any] = {
        "buildType": build.get("buildType") or DEFAULT_BUILD_TYPE,
        "externalParameters": build["externalParameters"],
        "resolvedDependencies": build.get("resolvedDependencies") or [],
    }
    if build.get("internalParameters"):
        definition["internalParameters"] = build["internalParameters"]
    run: Dict[str, Any] = {"builder": {"id": build["builder"]["id"]}}
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit() and int(epoch) > 0:  # 0: smith's default, "no time"
        run["metadata"] = {"startedOn": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                      time.gmtime(int(epoch)))}
    return _canonical({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {algorithm: hexpart}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"buildDefinition": definition, "runDetails": run},
    })


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def envelope(payload: bytes, private_key: Any) -> bytes:
    sig = signing.sign(private_key, pae(IN_TOTO_MEDIA_TYPE, payload))
    return _canonical({"payload": base64.b64encode(payload).decode(),
                       "payloadType": IN_TOTO_MEDIA_TYPE,
                       "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]})


def open_envelope(data: bytes, public_key: Any, manifest_digest: str, what: str) -> dict:
    """The statement of a DSSE envelope, if a signature verifies with `public_key` and the
    statement's subject is `manifest_digest`; else a SmithError."""
    doc = safe_json.loads(data, what, max_bytes=MAX_ENVELOPE)
    if safe_json.field(doc, "payloadType", str, what) != IN_TOTO_MEDIA_TYPE:
        raise SmithError("%s: payloadType is not %s" % (what, IN_TOTO_MEDIA_TYPE))
    try:
        payload = base64.b64decode(safe_json.field(doc, "payload", str, what), validate=True)
    except ValueError:
        raise SmithError("%s: the payload is not base64" % what) from None
    good = False
    for s in (safe_json.field(doc, "signatures", list, what) or [])[:16]:
        text = s.get("sig") if isinstance(s, dict) else None
        try:
            sig = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
        except ValueError:
            continue
        if sig and signing.verify(public_key, pae(IN_TOTO_MEDIA_TYPE, payload), sig):
            good = True
            break
    if not good:
        raise SmithError("%s: no signature by key %s" % (what, signing.fingerprint(public_key)))
    stmt = safe_json.loads(payload, what + ": statement", max_bytes=MAX_ENVELOPE)
    algorithm, _, hexpart = manifest_digest.partition(":")
    subjects = stmt.get("subject") if isinstance(stmt.get("subject"), list) else []
    if stmt.get("_type") != STATEMENT_TYPE or stmt.get("predicateType") != PREDICATE_TYPE or \
            not any(isinstance(s, dict) and s.get("digest") == {algorithm: hexpart}
                    for s in subjects):
        raise SmithError("%s: not an SLSA provenance statement about %s" % (what, manifest_digest))
    return stmt


def artifact_manifest(subject: dict, envelope_bytes: bytes) -> bytes:
    return _canonical({
        "schemaVersion": 2,
        "mediaType": media_types.OCI_MANIFEST,
        "artifactType": IN_TOTO_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": digest_of(EMPTY_JSON), "size": 2},
        "layers": [{"mediaType": DSSE_MEDIA_TYPE, "digest": digest_of(envelope_bytes),
                    "size": len(envelope_bytes),
                    "annotations": {PREDICATE_ANNOTATION: PREDICATE_TYPE}}],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"],
                    "size": subject["size"]},
        "annotations": {PREDICATE_ANNOTATION: PREDICATE_TYPE},
    })


def push_provenance(client: RegistryClient, layout: str, ref: Optional[str], dest: Reference,
                    digest: str, build: dict, private_key: Any) -> str:
    """Push the signed provenance of the image `digest` (pushed from `layout`) as a referrer;
    return the artifact manifest's digest."""
    entry = select_image(layout, ref)
    if entry["digest"] != digest:
        raise SmithError("%s: the pushed digest %s is not the layout's %s" % (
            layout, digest, entry["digest"]))
    subject = {"mediaType": entry.get("mediaType") or media_types.OCI_MANIFEST,
               "digest": digest, "size": entry["size"]}
    stmt = statement(build, "%s/%s" % (dest.registry, dest.repository), digest)
    existing = _existing(client, dest.repository, digest, stmt, private_key.public_key())
    if existing:  # a re-publish: this statement, signed by this key, is already there
        return existing
    env = envelope(stmt, private_key)
    put_blob(client, dest.repository, EMPTY_JSON)
    put_blob(client, dest.repository, env)
    data = artifact_manifest(subject, env)
    artifact, resp = client.put_manifest_response(dest.repository, digest_of(data), data,
                                                  media_types.OCI_MANIFEST)
    if not resp.header("OCI-Subject"):  # no referrers API: the fallback tag, as for SBOMs
        Pusher(client, layout, dest.repository)._add_to_referrers_tag(
            digest, artifact, data, json.loads(data))
    return artifact


def _existing(client: RegistryClient, repo: str, digest: str, stmt: bytes, public_key: Any
              ) -> Optional[str]:
    wanted = json.loads(stmt)
    for artifact, found in _verified(client, repo, digest, public_key, strict=False):
        if found == wanted:
            return artifact
    return None


def fetch_provenance(client: RegistryClient, repo: str, digest: str, public_key: Any
                     ) -> List[dict]:
    """The verified statements about `digest` among its referrers (the referrers tag of a
    registry without the referrers API); an in-toto referrer not signed by the key is an
    error."""
    return [stmt for _, stmt in _verified(client, repo, digest, public_key, strict=True)]


def _verified(client: RegistryClient, repo: str, digest: str, public_key: Any, strict: bool
              ) -> List[Tuple[str, dict]]:
    what = "%s/%s: referrers of %s" % (client.registry, repo, digest)
    found = client.get_manifest(repo, check_digest(digest, what).replace(":", "-"),
                                missing_ok=True)
    index = safe_json.loads(found[0], what) if found else {"manifests": []}
    statements = []
    for m in (index.get("manifests") or [])[:64]:
        if not isinstance(m, dict) or m.get("artifactType") != IN_TOTO_MEDIA_TYPE:
            continue
        data, _, art = client.get_manifest_by_digest(repo, m.get("digest"), m.get("size"))
        manifest = check_manifest(safe_json.loads(data, "%s@%s" % (repo, art)),
                                  "%s@%s" % (repo, art))
        subject = manifest.get("subject") or {}
        if subject.get("digest") != digest:
            continue
        for layer in manifest["layers"]:
            if layer.get("mediaType") == DSSE_MEDIA_TYPE:
                blob = get_blob(client, repo, layer, MAX_ENVELOPE, "%s@%s" % (repo, art))
                try:
                    statements.append((art, open_envelope(blob, public_key, digest,
                                                          "%s@%s" % (repo, art))))
                except SmithError:
                    if strict:
                        raise
    return statements
