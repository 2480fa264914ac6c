"""digests: the built-in and the OpenSSL hashers give the same digests; small data never loads
OpenSSL."""
import hashlib
import subprocess
import sys

import pytest

from smith.registry import digests


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 4096, digests.SMALL, digests.SMALL + 1,
                                  3 * digests.SMALL])
def test_digest_of_matches_hashlib_on_both_sides_of_the_small_limit(algorithm, size):
    data = bytes((i * 131 + 7) & 0xFF for i in range(size))
    assert digests.digest_of(data, algorithm) == "%s:%s" % (
        algorithm, hashlib.new(algorithm, data).hexdigest())


def test_a_small_document_is_hashed_without_loading_openssl():
    code = ("import sys; from smith.registry import digests; "
            "d = digests.digest_of(b'{}'); "
            "assert d == 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', d; "
            "print(sorted(m for m in ('hashlib', '_hashlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=digests.__file__.rsplit("/smith/", 1)[0], check=True).stdout
    assert out.strip() == "[]"


def test_streams_use_openssl():
    h = digests.hasher_for("sha256:" + "0" * 64)
    h.update(b"abc")
    assert h.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    assert digests.new_hasher("sha512").name == "sha512"
