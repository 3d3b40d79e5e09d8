"""Waiting on a condition with a deadline, never for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

POLL_S = 0.05


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Return as soon as `condition()` holds; fail the test when it still does not after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(POLL_S)


async def eventually(
    step: Callable[[], Awaitable[object]],
    condition: Callable[[], bool],
    timeout: float = 30.0,
    what: str = "condition",
) -> None:
    """Run `step` (e.g. one notifier batch) until `condition()` holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        await step()
        if condition():
            return
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        await asyncio.sleep(POLL_S)
