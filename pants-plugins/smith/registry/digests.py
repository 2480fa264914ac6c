"""Content digests (`sha256:<hex>`), computed while bytes stream past."""
import hashlib

from smith.errors import SmithError

ALGORITHMS = ("sha256", "sha512")


def hasher_for(digest: str):
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ALGORITHMS:
        raise SmithError("digest %s uses %r; only sha256 and sha512 are supported"
                         % (digest, algorithm))
    return hashlib.new(algorithm)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return "%s:%s" % (algorithm, hashlib.new(algorithm, data).hexdigest())


def verify_bytes(data: bytes, digest: str, what: str) -> None:
    actual = digest_of(data, digest.split(":", 1)[0]) if ":" in digest else None
    hasher_for(digest)
    if actual != digest:
        raise SmithError("%s: content has digest %s but %s was asked for; the registry or the "
                         "file is corrupt or tampered with" % (what, actual, digest))
