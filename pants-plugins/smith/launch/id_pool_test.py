import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from smith.errors import SmithError
from smith.launch import id_pool
from smith.launch.id_pool import IdPool, process_start
from smith.testutil import hostile_json


def _take(store: str) -> tuple:
    r = IdPool(store).allocate(lambda base: str(base), "runc", reap=lambda stale: None)
    return r.base, r.size, r.pid


def test_concurrent_allocations_get_distinct_ranges(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(6, mp_context=ctx) as pool:
        got = list(pool.map(_take, [str(tmp_path)] * 24))
    bases = sorted(b for b, _, _ in got)
    assert len(set(bases)) == 24
    assert all(b2 - b1 >= 65536 for b1, b2 in zip(bases, bases[1:]))
    assert bases[0] == 100000
    # The workers are alive (pool processes): their ranges are still taken.
    live = {p for _, _, p in got}
    assert {r.pid for r in IdPool(str(tmp_path)).in_use()} == live


def test_free_returns_the_lowest_range(tmp_path):
    pool = IdPool(str(tmp_path), first=200000, size=1000, count=3)
    a = pool.allocate(str, "runc", reap=lambda r: None)
    b = pool.allocate(str, "runc", reap=lambda r: None)
    c = pool.allocate(str, "runc", reap=lambda r: None)
    assert [a.base, b.base, c.base] == [200000, 201000, 202000]
    with pytest.raises(SmithError, match="--max-containers"):
        pool.allocate(str, "runc", reap=lambda r: None)
    pool.free(b)
    assert pool.allocate(str, "runc", reap=lambda r: None).base == 201000


def test_ranges_of_dead_launchers_are_reaped(tmp_path):
    pool = IdPool(str(tmp_path), first=300000, size=10, count=2)
    # A launcher that takes a range and dies without freeing it (SIGKILL, crash).
    code = ("import sys; sys.path.insert(0, %r); from smith.launch.id_pool import IdPool; "
            "IdPool(%r, first=300000, size=10, count=2).allocate(str, 'runc', reap=lambda r: None)"
            % (os.path.dirname(os.path.dirname(os.path.dirname(__file__))), str(tmp_path)))
    subprocess.run([sys.executable, "-c", code], check=True, env={})
    [dead] = pool.in_use()
    assert process_start(dead.pid) != dead.start
    reaped = []
    mine = pool.allocate(str, "runc", reap=reaped.append)
    assert reaped == [dead]
    assert mine.base == 300000  # the dead launcher's range, given out again
    assert pool.in_use() == [mine]


def test_pool_must_fit_32_bit_ids(tmp_path):
    with pytest.raises(SmithError, match="32-bit"):
        IdPool(str(tmp_path), first=100000, size=65536, count=70000)


_RANGE = {"base": 100000, "size": 65536, "container": "100000", "pid": 1, "start": "1", "runtime": "runc",
          "layers": []}


def _ids(**changed):
    return json.dumps({"ranges": [dict(_RANGE, **changed)]}).encode()


@pytest.mark.parametrize("content, message", [
    (b'[{"base": 1}]', "ids.json: expected a JSON object, found array"),
    (b'{"ranges": {}}', "ids.json: the field 'ranges' must be a JSON array, not object"),
    (b'{"ranges": [7]}', "ids.json: ranges[0]: expected a JSON object, found integer"),
    (_ids(base="100000"), "ranges[0]: the field 'base' must be a JSON integer, not string"),
    (_ids(pid=True), "ranges[0]: the field 'pid' must be a JSON integer, not boolean"),
    (_ids(runtime=["runc"]), "ranges[0]: the field 'runtime' must be a JSON string, not array"),
    (_ids(layers=[1]), "ranges[0]: the field 'layers' must hold only strings"),
    (_ids(container="../../../etc"), "ranges[0]: the container '../../../etc' is not a plain name"),
    (_ids(extra=1), "ranges[0]: unknown fields ['extra']"),
    (json.dumps({"ranges": [{k: v for k, v in _RANGE.items() if k != "start"}]}).encode(),
     "ranges[0]: the field 'start' is missing"),
    (hostile_json.deeply_nested(), hostile_json.DEEP_MESSAGE),
    (hostile_json.padded({"ranges": []}, id_pool.MAX_IDS_FILE_BYTES),
     hostile_json.oversized_message(id_pool.MAX_IDS_FILE_BYTES)),
    (hostile_json.NOT_JSON, hostile_json.NOT_JSON_MESSAGE),
], ids=["top-level-array", "ranges-an-object", "range-an-int", "base-a-string", "pid-a-bool",
        "runtime-a-list", "layer-an-int", "container-a-path", "unknown-field", "start-missing", "deep",
        "oversized", "not-json"])
def test_a_damaged_ids_file_is_a_clear_error_and_nothing_is_reaped(tmp_path, content, message):
    (tmp_path / "ids.json").write_bytes(content)
    reaped = []
    pool = IdPool(str(tmp_path))
    for use in (lambda: pool.allocate(str, "runc", reap=reaped.append), pool.in_use):
        with pytest.raises(SmithError) as e:
            use()
        assert str(e.value).startswith(str(tmp_path / "ids.json")), e.value
        assert message in str(e.value) and str(e.value).endswith("once no smith launcher of the store runs, delete it")
    assert reaped == [] and (tmp_path / "ids.json").read_bytes() == content  # left as it was, for a look
