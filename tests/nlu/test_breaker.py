"""The circuit breaker: a dead Rasa costs a few timeouts, then nothing until the cool-down has passed."""

from __future__ import annotations

import pytest

from nlu.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_and_refuses_calls() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=3, cooldown_s=30, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state is State.CLOSED
    assert b.allow()
    b.record_failure()
    assert b.state is State.OPEN
    assert not b.allow()


def test_a_success_resets_the_failure_count() -> None:
    b = CircuitBreaker(failures=2, cooldown_s=30, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is State.CLOSED


def test_half_opens_after_cool_down_with_a_single_trial_call() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, cooldown_s=30, clock=clock)
    b.record_failure()
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.2
    assert b.state is State.HALF_OPEN
    assert b.allow()
    assert not b.allow(), "only one trial call while half-open"
    b.record_success()
    assert b.state is State.CLOSED
    assert b.allow()


def test_a_failed_trial_reopens_for_another_cool_down() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=3, cooldown_s=10, clock=clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure()
    assert b.state is State.OPEN
    assert not b.allow()
    clock.now += 10
    assert b.allow()


def test_rejects_nonsense_parameters() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures=0, cooldown_s=1)
