"""A bounded producer thread: items made ahead of their consumer, taken in batches.

A job's files are parsed and chunked on this thread while the job's own thread
embeds and writes the files before them (the embedder releases the GIL), and
the consumer takes every file that is ready at once, so that small files are
embedded together instead of one short batch each.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


class Prefetcher(Generic[T]):
    """Iterates `source` on a thread, at most `max_weight` ahead of the consumer.

    Use it as a context manager; leaving it stops the thread after the item it
    is making (the source is closed on that thread) and waits for it.

    Args:
        source: The items, made on the thread in order.
        weight: An item's size (at least 1); the thread waits while the items not
            yet taken weigh `max_weight` or more.
        max_weight: How far ahead the thread may run.
        name: The thread's name.
    """

    def __init__(
        self,
        source: Iterator[T],
        *,
        weight: Callable[[T], int],
        max_weight: int,
        name: str = "citewise-prefetch",
    ) -> None:
        self._source = source
        self._weight = weight
        self._max_weight = max(max_weight, 1)
        self._ready: deque[tuple[T, int]] = deque()
        self._waiting = 0
        self._done = False
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)

    def __enter__(self) -> Prefetcher[T]:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop making items and wait for the thread to end."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def _produce(self) -> None:
        try:
            for item in self._source:
                weight = max(self._weight(item), 1)
                with self._cond:
                    while self._waiting >= self._max_weight and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    self._ready.append((item, weight))
                    self._waiting += weight
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer, raised where it happened
            with self._cond:
                self._error = exc
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def batch(self, max_weight: int, linger_s: float = 0.0) -> list[T]:
        """The next ready items, in order, weighing at most `max_weight` together.

        Waits for the first item; then takes those ready, waiting up to `linger_s`
        for more while the batch is light and the source not finished. An item
        heavier than `max_weight` comes alone.

        Returns:
            The items; empty once the source is exhausted.

        Raises:
            BaseException: What the source raised, once the items before it are taken.
        """
        items: list[T] = []
        total = 0
        deadline: float | None = None
        with self._cond:
            while True:
                if self._ready:
                    item, weight = self._ready[0]
                    if items and total + weight > max_weight:
                        break
                    self._ready.popleft()
                    self._waiting -= weight
                    self._cond.notify_all()
                    items.append(item)
                    total += weight
                    if total >= max_weight:
                        break
                elif self._done:
                    if self._error is not None and not items:
                        raise self._error
                    break
                elif not items:
                    self._cond.wait()
                else:
                    deadline = deadline or time.monotonic() + linger_s
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
        return items
