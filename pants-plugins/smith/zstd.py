"""zstd for the core, with the compiled `zstandard` module optional.

The Pants tool PEX always has it. dist/smith is a zipapp of pure Python and cannot carry it:
there gzip, xz and plain input work on any machine, and zstd input asks for the module.
"""
from smith.errors import SmithError

try:
    import zstandard
except ImportError:  # dist/smith on a machine without python3-zstandard
    zstandard = None

MAGIC = b"\x28\xb5\x2f\xfd"
# What a corrupt zstd stream raises (nothing to catch when the module is absent).
ERRORS = (zstandard.ZstdError,) if zstandard else ()


def _module(what: str):
    if zstandard is None:
        raise SmithError("%s is zstd-compressed, which needs the Python module zstandard: "
                         "pip install zstandard (or apt-get install python3-zstandard)" % what)
    return zstandard


def decompress(data: bytes, what: str) -> bytes:
    # Streams written without the content size in the frame need the reader API.
    return _module(what).ZstdDecompressor().stream_reader(data).read()


def stream_reader(raw, what: str):
    """A readable uncompressed view of the zstd stream `raw` (all frames)."""
    return _module(what).ZstdDecompressor().stream_reader(raw, read_across_frames=True)
