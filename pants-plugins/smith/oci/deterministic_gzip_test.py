"""The parallel gzip writer: one output whatever the thread count or write sizes, and readable
by the real gzip, pigz and Python's gzip module."""
import gzip
import io
import random
import subprocess

import pytest

from smith.oci.deterministic_gzip import BLOCK_SIZE, GzipSink
from smith.testutil.debian import install_packages, tool_env


def _compress(data: bytes, threads: int, chunk: int) -> bytes:
    out = io.BytesIO()
    sink = GzipSink(out, threads=threads)
    for i in range(0, len(data), chunk):
        sink.write(data[i:i + chunk])
    sink.close()
    assert sink.size == len(out.getvalue())
    return out.getvalue()


def _sample(size: int) -> bytes:
    """Compressible but not trivial: words from a fixed vocabulary, then random bytes."""
    rnd = random.Random(size)
    words = [bytes(rnd.choice(b"abcdefghij") for _ in range(rnd.randint(2, 9))) for _ in range(500)]
    text = b" ".join(rnd.choice(words) for _ in range(size // 6))[: size * 3 // 4]
    return text + rnd.randbytes(size - len(text))


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 5 * BLOCK_SIZE + 12345])
def test_same_bytes_for_any_thread_count_and_write_size(size: int) -> None:
    data = _sample(size)
    one = _compress(data, threads=1, chunk=size or 1)
    for threads, chunk in ((2, 4096), (3, 100_000), (8, 1)):
        if chunk == 1 and size > BLOCK_SIZE:
            chunk = 777
        assert _compress(data, threads, chunk) == one, (threads, chunk)
    assert gzip.decompress(one) == data


def test_real_gzip_and_pigz_read_it(tmp_path) -> None:
    install_packages(["pigz"])
    data = _sample(3 * BLOCK_SIZE + 999)
    path = tmp_path / "layer.gz"
    path.write_bytes(_compress(data, threads=2, chunk=65536))
    for tool in (["gzip", "-t"], ["pigz", "-t"]):
        subprocess.run(tool + [str(path)], env=tool_env(), check=True)
    assert subprocess.run(["gzip", "-dc", str(path)], env=tool_env(), stdout=subprocess.PIPE,
                          check=True).stdout == data


def test_write_copies_a_buffer_the_caller_reuses() -> None:
    """Blocks point into written data without copying it: write() must still copy a bytearray
    the caller fills again (as recompress's reader may), or earlier blocks would change."""
    data = _sample(4 * BLOCK_SIZE + 321)
    expected = _compress(data, threads=1, chunk=len(data))
    out = io.BytesIO()
    sink = GzipSink(out, threads=2)
    buf = bytearray(BLOCK_SIZE + 7)
    for i in range(0, len(data), len(buf)):
        piece = data[i:i + len(buf)]
        buf[:len(piece)] = piece
        sink.write(memoryview(buf)[:len(piece)])
    buf[:] = b"\xff" * len(buf)
    sink.close()
    assert out.getvalue() == expected
