"""Check repository signatures with gpgv and a given keyring (the way apt does)."""
import os
import shutil
import subprocess
import tempfile
from typing import Optional

from smith.errors import SmithError

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _gpgv() -> str:
    found = shutil.which("gpgv", path=os.environ.get("PATH") or PATH) or shutil.which("gpgv", path=PATH)
    if not found:
        raise SmithError("gpgv is needed to check repository signatures: install the gpgv package "
                         "or mark the repository trusted")
    return found


def verify(keyring: str, data: bytes, signature: Optional[bytes], what: str) -> bytes:
    """Verify a clearsigned DATA (signature None) or DATA with a detached SIGNATURE.
    Returns the signed content, which is all that may be trusted."""
    keyring = os.path.abspath(keyring)   # gpgv reads a relative keyring from ~/.gnupg
    if not os.path.isfile(keyring):
        raise SmithError("keyring %s of the repository does not exist; set the repository's "
                         "keyring to an exported public keyring (or trusted=true)" % keyring)
    with tempfile.TemporaryDirectory(prefix="smith-gpgv-") as tmp:
        env = {"PATH": PATH, "LC_ALL": "C", "GNUPGHOME": tmp, "HOME": tmp}
        data_path = os.path.join(tmp, "data")
        with open(data_path, "wb") as f:
            f.write(data)
        if signature is None:
            out_path = os.path.join(tmp, "out")
            cmd = [_gpgv(), "--keyring", keyring, "--output", out_path, data_path]
        else:
            sig_path = os.path.join(tmp, "data.sig")
            with open(sig_path, "wb") as f:
                f.write(signature)
            out_path = data_path
            cmd = [_gpgv(), "--keyring", keyring, sig_path, data_path]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            detail = proc.stdout.decode("utf-8", "replace").strip().replace(tmp + "/", "")
            raise SmithError("the signature of %s does not verify with keyring %s:\n%s\n"
                             "use the repository's real keyring, or trusted=true for an unsigned "
                             "repository you trust" % (what, keyring, detail))
        with open(out_path, "rb") as f:
            return f.read()
