"""The endpoint circuit breaker: opens, refuses, probes once, closes or reopens."""

from __future__ import annotations

import threading

import pytest

from citewise.answer.breaker import BreakerOpenError, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _fail(breaker: CircuitBreaker, times: int, reason: str = "timeout") -> None:
    for _ in range(times):
        breaker.admit().failure(reason)


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(fail_max=3, reset_s=10, clock=Clock())
    _fail(breaker, 2)
    breaker.admit().success()  # a success resets the count
    _fail(breaker, 2)
    assert breaker.snapshot().state == "closed"
    assert breaker.snapshot().consecutive_failures == 2
    _fail(breaker, 1, "malformed")
    state = breaker.snapshot()
    assert state.state == "open" and state.opened_total == 1
    assert state.retry_in_s == 10 and state.last_failure == "malformed"
    with pytest.raises(BreakerOpenError, match="open"):
        breaker.admit()


def test_half_open_admits_one_probe_and_its_success_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(fail_max=1, reset_s=5, clock=clock)
    _fail(breaker, 1)
    clock.now += 4.9
    with pytest.raises(BreakerOpenError):
        breaker.admit()
    clock.now += 0.1
    assert breaker.snapshot().state == "half_open"
    probe = breaker.admit()
    assert probe.probe
    with pytest.raises(BreakerOpenError, match="probe is in flight"):
        breaker.admit()
    probe.success()
    state = breaker.snapshot()
    assert state.state == "closed" and state.consecutive_failures == 0
    assert not breaker.admit().probe


def test_failed_probe_reopens_for_another_reset_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(fail_max=2, reset_s=5, clock=clock)
    _fail(breaker, 2)
    clock.now += 5
    breaker.admit().failure("connection")  # one failure is enough while half-open
    state = breaker.snapshot()
    assert state.state == "open" and state.opened_total == 2 and state.retry_in_s == 5


def test_released_probe_frees_the_slot_without_a_verdict() -> None:
    clock = Clock()
    breaker = CircuitBreaker(fail_max=1, reset_s=1, clock=clock)
    _fail(breaker, 1)
    clock.now += 1
    breaker.admit().release()  # the client went away mid-probe
    assert breaker.snapshot().state == "half_open"
    probe = breaker.admit()
    assert probe.probe
    probe.success()
    assert breaker.snapshot().state == "closed"


def test_late_outcomes_of_calls_admitted_before_opening_do_not_close_it() -> None:
    breaker = CircuitBreaker(fail_max=1, reset_s=30, clock=Clock())
    slow = breaker.admit()
    breaker.admit().failure("timeout")
    slow.success()  # admitted while closed, finished after the breaker opened
    assert breaker.snapshot().state == "open"
    slow.failure("timeout")  # a permit reports once
    assert breaker.snapshot().consecutive_failures == 1


def test_concurrent_callers_get_exactly_one_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(fail_max=1, reset_s=1, clock=clock)
    _fail(breaker, 1)
    clock.now += 1
    admitted: list[bool] = []
    start = threading.Barrier(8)

    def call() -> None:
        start.wait()
        try:
            breaker.admit()
            admitted.append(True)
        except BreakerOpenError:
            admitted.append(False)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(admitted) == [False] * 7 + [True]
