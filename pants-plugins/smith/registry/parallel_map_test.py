"""transport.parallel_map: the pool push and pull run their blobs on."""
import threading
import time

import pytest

from smith.registry.transport import parallel_map


def test_results_in_item_order_and_really_parallel() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def work(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return n * n

    assert parallel_map(work, list(range(10)), jobs=4) == [n * n for n in range(10)]
    assert peak[0] == 4
    assert parallel_map(work, [3], jobs=4) == [9]
    assert parallel_map(work, [], jobs=4) == []


def test_first_failure_in_item_order_is_raised_and_nothing_new_starts() -> None:
    started = []

    def work(n: int) -> int:
        started.append(n)
        if n in (1, 2):
            time.sleep(0.05 if n == 1 else 0)
            raise ValueError("item %d" % n)
        time.sleep(0.01)
        return n

    with pytest.raises(ValueError, match="item 1"):
        parallel_map(work, list(range(50)), jobs=3)
    assert len(started) < 50
