"""In-memory decompression of package payloads and repository indexes stops at the cap."""
import bz2
import gzip
import lzma

import pytest
import zstandard

from smith.errors import SmithError
from smith.packages.compression import decompress
from smith.untar import Limits

FORMATS = {
    "gzip (two members)": lambda d: gzip.compress(d[:10]) + gzip.compress(d[10:]),
    "xz": lzma.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "bzip2": bz2.compress,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_round_trip_cap_and_truncation(fmt):
    data = bytes(range(256)) * 4000  # 1 MB
    packed = FORMATS[fmt](data)
    assert decompress(packed, "data.tar") == data
    # A bomb: 1 MB from a few KB; with the cap at 64 KiB, work stops there.
    with pytest.raises(SmithError, match=r"data.tar: decompresses to more than 64K bytes; raise it "
                                         r"with --max-layer-bytes or SMITH_MAX_LAYER_BYTES"):
        decompress(packed, "data.tar", Limits(layer_bytes=64 << 10))
    if fmt != "zstd":  # the zstandard stream reader returns what a truncated frame holds
        with pytest.raises(SmithError, match=r"data.tar: cannot decompress .*truncated or corrupt"):
            decompress(packed[:len(packed) // 2], "data.tar")


def test_plain_data_is_returned_as_is():
    assert decompress(b"plain text", "x") == b"plain text"
