"""A small circuit breaker, so a dead Rasa costs the bot one timeout, not one per message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are refused until the cool-down has passed
    HALF_OPEN = "half_open"  # one trial call is let through; its outcome closes or re-opens


class CircuitBreaker:
    """Opens after `failures` consecutive failures; lets one trial call through after `cooldown_s`."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or cooldown_s < 0:
            raise ValueError("circuit breaker needs failures >= 1 and cooldown_s >= 0")
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._count = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> State:
        with self._lock:
            if self._state is State.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
                return State.HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """Whether to try the remote call now (in half-open state: only the first caller does)."""
        with self._lock:
            if self._state is State.CLOSED:
                return True
            if self._clock() - self._opened_at < self.cooldown_s:
                return False
            if self._trial_running:
                return False
            self._state = State.HALF_OPEN
            self._trial_running = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._state = State.CLOSED
            self._count = 0
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._trial_running = False
            self._count += 1
            if self._state is State.HALF_OPEN or self._count >= self.failures:
                self._state = State.OPEN
                self._opened_at = self._clock()
