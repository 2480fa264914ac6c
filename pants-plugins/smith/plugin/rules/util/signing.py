"""`[smith-publish]`: signing what `pants publish` pushes, and the SLSA provenance it attaches.

The private key never enters the build graph: its path goes to `smith push --sign-key` as an
absolute path (the publish process runs in the foreground, as an InteractiveProcess, never cached),
and its passphrase reaches that process only through `SMITH_SIGNING_PASSWORD` in its environment,
copied from Pants' own environment. Neither is part of any cached Process key nor stored in the
LMDB store / a remote cache.

The provenance build parameters (the target, its image fields, the lockfiles' sha256) are written
as a small JSON file into the publish sandbox; `smith push --source-repo BUILDROOT` adds the
commit at push time.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Tuple

from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import HydratedSources, HydrateSourcesRequest, TransitiveTargets, \
    TransitiveTargetsRequest
from pants.option.option_types import BoolOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import help_text

from smith.plugin.target_types.packages import SmithLockfileSourceField, SmithLockfilesSourcesField

PASSWORD_ENV = "SMITH_SIGNING_PASSWORD"
PARAMS_FILE = "__smith_provenance.json"


class SmithPublishSubsystem(Subsystem):
    options_scope = "smith-publish"
    help = "How `pants publish` signs smith images and attests their provenance."

    signing_key = StrOption(
        default=None,
        help=help_text(
            f"""
            A cosign/sigstore encrypted private key (`smith keygen --output PREFIX` writes one;
            so does `cosign generate-key-pair`). When set, `pants publish` signs every pushed
            image digest in the cosign format (the `sha256-<hex>.sig` tag) and attaches signed
            SLSA provenance. The passphrase is read from the environment variable
            `{PASSWORD_ENV}`; never put it in pants.toml. A relative path is relative to the
            build root.
            """
        ),
        advanced=True,
    )
    provenance = BoolOption(
        default=True,
        help="With a signing key, also push an SLSA v1 provenance statement (signed, DSSE) as an "
        "OCI 1.1 referrer of the image.",
        advanced=True,
    )
    builder_id = StrOption(
        default="https://github.com/smith-for-pants/smith/pants-publish@v1",
        help="`runDetails.builder.id` of the provenance: the identity of the system that builds "
        "and publishes (e.g. your CI's workflow URL).",
        advanced=True,
    )


@dataclass(frozen=True)
class ProvenanceParamsRequest:
    address: Address
    parameters: Tuple[Tuple[str, object], ...]  # the publish-relevant fields, JSON-able


@dataclass(frozen=True)
class ProvenanceParams:
    digest: Digest  # holds PARAMS_FILE


@rule(desc="Collecting the provenance of a smith image")
async def provenance_params(
    request: ProvenanceParamsRequest, options: SmithPublishSubsystem
) -> ProvenanceParams:
    transitive = await Get(
        TransitiveTargets, TransitiveTargetsRequest([request.address])
    )
    lock_fields = [
        tgt[field_type]
        for tgt in transitive.closure
        for field_type in (SmithLockfileSourceField, SmithLockfilesSourcesField)
        if tgt.has_field(field_type)
    ]
    hydrated = await MultiGet(
        Get(HydratedSources, HydrateSourcesRequest(field)) for field in lock_fields
    )
    contents = await MultiGet(
        Get(DigestContents, Digest, h.snapshot.digest) for h in hydrated
    )
    locks = {fc.path: hashlib.sha256(fc.content).hexdigest() for dc in contents for fc in dc}
    params = {
        "buildType": "https://github.com/smith-for-pants/smith/pants-publish/v1",
        "builder": {"id": options.builder_id},
        "externalParameters": {"target": str(request.address), **dict(request.parameters)},
        "resolvedDependencies": [
            {"uri": path, "digest": {"sha256": sha}} for path, sha in sorted(locks.items())
        ],
    }
    body = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return ProvenanceParams(await Get(Digest, CreateDigest([FileContent(PARAMS_FILE, body)])))


def signing_args(options: SmithPublishSubsystem, buildroot: str) -> Tuple[str, ...]:
    """`smith push` options for signing: the key as an absolute path (never an input digest)."""
    if not options.signing_key:
        return ()
    key = os.path.join(buildroot, options.signing_key)
    args: Tuple[str, ...] = ("--sign-key", key)
    if options.provenance:
        args += ("--provenance", PARAMS_FILE, "--source-repo", buildroot)
    return args


def signing_env_names(options: SmithPublishSubsystem) -> Tuple[str, ...]:
    return (PASSWORD_ENV,) if options.signing_key else ()


def rules():
    return collect_rules()
