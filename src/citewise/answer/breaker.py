"""A circuit breaker per LLM endpoint: closed -> open -> half-open -> closed.

`consecutive failures >= fail_max` opens it; an open breaker refuses calls at
once (the pipeline moves to the next tier without waiting) until `reset_s` has
passed; then exactly one caller gets a probe permit. The probe's success closes
the breaker, its failure opens it again for another `reset_s`; a probe that ends
without a verdict (the client went away) frees the slot for the next caller.

Not pybreaker: its ``call()`` holds the breaker's lock for the whole guarded
call (every request to an endpoint would queue behind the one in flight), its
``calling()`` records a generator's ``GeneratorExit`` as a failure (or, if
excluded, as a success that closes a half-open breaker), and half-open admits
every concurrent caller rather than one probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

BreakerStateName = Literal["closed", "open", "half_open"]


class BreakerState(BaseModel):
    """A breaker's state as reported by the API."""

    state: BreakerStateName
    consecutive_failures: int
    fail_max: int
    reset_s: float
    retry_in_s: float | None = None
    opened_total: int = 0
    last_failure: str | None = None


class BreakerOpenError(Exception):
    """The breaker refused the call: open, or a half-open probe is already running."""


class Permit:
    """Admission to call the endpoint once; report exactly one outcome."""

    def __init__(self, breaker: CircuitBreaker, *, probe: bool) -> None:
        self._breaker = breaker
        self.probe = probe
        self._done = False

    def success(self) -> None:
        """The endpoint answered properly."""
        self._finish("success", None)

    def failure(self, reason: str) -> None:
        """The endpoint failed (`reason`: timeout, connection, malformed, ...)."""
        self._finish("failure", reason)

    def release(self) -> None:
        """No verdict (the caller gave up): counts neither way."""
        self._finish("release", None)

    def _finish(self, outcome: str, reason: str | None) -> None:
        if not self._done:
            self._done = True
            self._breaker._record(self, outcome, reason)  # noqa: SLF001


class CircuitBreaker:
    """Thread-safe breaker for one endpoint; the lock is held only for state changes.

    Args:
        fail_max: Consecutive failures that open the breaker.
        reset_s: Seconds the breaker stays open before a half-open probe.
        clock: Monotonic clock in seconds (tests may pass their own).
    """

    def __init__(
        self, fail_max: int, reset_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.fail_max = fail_max
        self.reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerStateName = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._opened_total = 0
        self._last_failure: str | None = None

    def admit(self) -> Permit:
        """A permit to call the endpoint now.

        Raises:
            BreakerOpenError: The breaker is open, or its half-open probe is in flight.
        """
        with self._lock:
            if self._state == "closed":
                return Permit(self, probe=False)
            if self._state == "open":
                wait = self._opened_at + self.reset_s - self._clock()
                if wait > 0:
                    raise BreakerOpenError(f"circuit open, next probe in {wait:.1f} s")
                self._state = "half_open"
            if self._probing:
                raise BreakerOpenError("circuit half-open, a probe is in flight")
            self._probing = True
            return Permit(self, probe=True)

    def snapshot(self) -> BreakerState:
        """The current state; an open breaker whose wait is over reports half_open."""
        with self._lock:
            state, retry_in = self._state, None
            if state == "open":
                retry_in = round(max(0.0, self._opened_at + self.reset_s - self._clock()), 3)
                if retry_in == 0:
                    state = "half_open"
            return BreakerState(
                state=state,
                consecutive_failures=self._failures,
                fail_max=self.fail_max,
                reset_s=self.reset_s,
                retry_in_s=retry_in,
                opened_total=self._opened_total,
                last_failure=self._last_failure,
            )

    def _record(self, permit: Permit, outcome: str, reason: str | None) -> None:
        with self._lock:
            if permit.probe:
                self._probing = False
            if outcome == "release":
                return
            if outcome == "success":
                if permit.probe or self._state == "closed":
                    self._state = "closed"
                    self._failures = 0
                return
            self._failures += 1
            self._last_failure = reason
            if permit.probe or (self._state == "closed" and self._failures >= self.fail_max):
                self._state = "open"
                self._opened_at = self._clock()
                self._opened_total += 1
