"""The in-process LRU with time to live behind the query-vector and answer caches."""

from __future__ import annotations

import threading

from citewise.core.lru import LRU


def test_least_recently_used_is_evicted_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_entries_expire_after_their_ttl() -> None:
    now = [100.0]
    cache: LRU[str, int] = LRU(10, ttl_s=5, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] += 4.9
    assert cache.get("a") == 1
    now[0] += 0.2
    assert cache.get("a") is None and len(cache) == 0


def test_size_zero_keeps_nothing_and_pop_and_clear_work() -> None:
    off: LRU[str, int] = LRU(0)
    off.put("a", 1)
    assert off.get("a") is None
    cache: LRU[str, int] = LRU(3)
    cache.put("a", 1)
    assert cache.pop("a") == 1 and cache.pop("a") is None
    cache.put("b", 2)
    cache.clear()
    assert len(cache) == 0


def test_concurrent_writers_keep_the_bound() -> None:
    cache: LRU[int, int] = LRU(50)

    def write(offset: int) -> None:
        for i in range(2000):
            cache.put(offset + i, i)
            cache.get(offset + i // 2)

    threads = [threading.Thread(target=write, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50
