"""`smith keygen --output PREFIX`: write a new ECDSA P-256 signing key pair, PREFIX (the private
key, encrypted with the passphrase in $SMITH_SIGNING_PASSWORD, in the cosign/sigstore format that
`cosign sign --key` and containers/image's `--sign-by-sigstore-private-key` read) and PREFIX.pub
(the public key for `smith pull --verify-key`, `cosign verify --key` and policy.json's
`sigstoreSigned` `keyPath`)."""
import os
import sys
from typing import List

from smith.errors import SmithError
from smith.registry.options import _Parser
from smith.registry.signing import PASSWORD_ENV, fingerprint, generate_keypair, \
    load_public_key, password_from_env


def _write_new(path: str, data: bytes, mode: int) -> None:
    """Create `path` (never overwrite a key), with `mode` from the start."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode)
    except FileExistsError:
        raise SmithError("%s already exists; smith keygen never overwrites a key" % path) \
            from None
    except OSError as e:
        raise SmithError("%s: cannot create (%s)" % (path, e.strerror or e)) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        os.unlink(path)
        raise


def main(argv: List[str]) -> int:
    p = _Parser(prog="smith keygen", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--output", required=True, metavar="PREFIX",
                   help="write the private key to PREFIX and the public key to PREFIX.pub")
    args = p.parse_args(argv)
    password = password_from_env(new=True)
    private, public = generate_keypair(password)
    for path in (args.output, args.output + ".pub"):
        if os.path.lexists(path):
            raise SmithError("%s already exists; smith keygen never overwrites a key" % path)
    _write_new(args.output, private, 0o600)
    try:
        _write_new(args.output + ".pub", public, 0o644)
    except BaseException:
        os.unlink(args.output)
        raise
    key = load_public_key(args.output + ".pub")
    print("smith keygen: private key %s (encrypted with $%s), public key %s.pub, %s" % (
        args.output, PASSWORD_ENV, args.output, fingerprint(key)), file=sys.stderr)
    return 0
