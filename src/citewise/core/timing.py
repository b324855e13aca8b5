"""Stage timings for responses and logs."""

from __future__ import annotations

import time


class StageTimer:
    """Records how long each named stage took, in milliseconds."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self.laps: dict[str, float] = {}
        self.stages: list[tuple[str, float, float]] = []
        """Every lap in order as (name, start, end) ``perf_counter`` values (names may repeat)."""

    @property
    def started(self) -> float:
        """When the timer started (a ``time.perf_counter()`` value)."""
        return self._start

    def lap(self, name: str) -> None:
        """Close the current stage under `name` and start the next one."""
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000, 1)
        self.stages.append((name, self._last, now))
        self._last = now

    def total(self) -> float:
        """Milliseconds since the timer started."""
        return round((time.perf_counter() - self._start) * 1000, 1)

    def since_start(self, instant: float) -> float:
        """Milliseconds from the timer's start to `instant` (a ``time.perf_counter()`` value)."""
        return round((instant - self._start) * 1000, 1)
