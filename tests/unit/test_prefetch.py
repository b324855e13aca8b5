"""The bounded producer thread that prepares a job's files ahead of the embedder."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from citewise.ingest.prefetch import Prefetcher


def _numbers(n: int, made: list[int] | None = None, delay: float = 0.0) -> Iterator[int]:
    for i in range(n):
        time.sleep(delay)
        if made is not None:
            made.append(i)
        yield i


def test_items_come_in_order_in_batches_bounded_by_weight() -> None:
    with Prefetcher(_numbers(10), weight=lambda i: 3 if i == 4 else 1, max_weight=100) as items:
        time.sleep(0.2)  # everything is ready
        batches = []
        while batch := items.batch(4):
            batches.append(batch)
    assert [i for b in batches for i in b] == list(range(10))
    assert batches[0] == [0, 1, 2, 3]  # the next one (weight 3) would pass 4
    assert all(sum(3 if i == 4 else 1 for i in b) <= 4 for b in batches)


def test_an_item_heavier_than_the_batch_comes_alone() -> None:
    with Prefetcher(_numbers(3), weight=lambda i: 50 if i == 1 else 1, max_weight=100) as items:
        time.sleep(0.2)
        assert items.batch(10) == [0]
        assert items.batch(10) == [1]
        assert items.batch(10) == [2]
        assert items.batch(10) == []


def test_the_producer_stays_at_most_max_weight_ahead() -> None:
    made: list[int] = []
    with Prefetcher(_numbers(100, made), weight=lambda _: 1, max_weight=5) as items:
        time.sleep(0.3)
        assert 5 <= len(made) <= 6  # five waiting, one made and held back
        assert items.batch(2) == [0, 1]
        time.sleep(0.3)
        assert len(made) <= 8


def test_a_light_batch_waits_up_to_the_linger_for_more() -> None:
    with Prefetcher(_numbers(3, delay=0.1), weight=lambda _: 1, max_weight=10) as items:
        assert items.batch(10, linger_s=1.0) == [0, 1, 2]  # ends early: source exhausted
    with Prefetcher(_numbers(3, delay=0.3), weight=lambda _: 1, max_weight=10) as items:
        assert items.batch(10, linger_s=0.0) == [0]


def test_the_source_error_is_raised_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("database away")

    with Prefetcher(failing(), weight=lambda _: 1, max_weight=10) as items:
        time.sleep(0.1)
        assert items.batch(10) == [1, 2]
        with pytest.raises(RuntimeError, match="database away"):
            items.batch(10)


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    prefetcher = Prefetcher(endless(), weight=lambda _: 1, max_weight=3)
    with prefetcher as items:
        assert items.batch(1) == [0]
    assert closed.is_set()
    assert not prefetcher._thread.is_alive()
