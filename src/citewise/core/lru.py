"""A small thread-safe LRU map with an optional time to live (the in-process caches' store)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `size` entries, least recently used evicted first; entries older than `ttl_s` expire.

    Args:
        size: Most entries kept (0 keeps none).
        ttl_s: Seconds an entry lives (None: until evicted).
        clock: Monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        size: int,
        ttl_s: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The live value of `key` (now most recently used), or None."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            stored, value = item
            if self.ttl_s is not None and self._clock() - stored > self.ttl_s:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store `value` under `key`, evicting the least recently used beyond `size`."""
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Remove `key`; its value, or None."""
        with self._lock:
            item = self._data.pop(key, None)
            return None if item is None else item[1]

    def __len__(self) -> int:
        """Entries held (expired ones included until they are read or evicted)."""
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()
