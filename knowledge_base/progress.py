"""Progress of long work, drawn only while a person watches a terminal.

Library code marks its steps (`with progress.task("embedding passages", total=n): ... advance(k)`);
these calls cost nothing unless the command line turned progress on (`progress.shown(...)`, done for
the batch commands: ingest, index, verdicts, claims, restore), and then a rich progress bar is
drawn on stderr and removed when the work ends. It is on only when `progress.wanted()`: never with
`--json`, never when stdout or stderr is not a terminal (pipes, CI logs, the scheduler process).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


class _Reporter:
    """Draws a rich progress display on stderr while at least one step runs (none: nothing drawn)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tasks: list[Any] = []

    def begin(self, description: str, total: int | None) -> Any:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
        task_id = self.bar.add_task(description, total=total)
        self.tasks.append(task_id)
        return task_id

    def end(self, task_id: Any) -> None:
        self.tasks.remove(task_id)
        self.bar.remove_task(task_id)
        if not self.tasks:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


_active: ContextVar[_Reporter | None] = ContextVar("kabashoax_progress", default=None)


def wanted(as_json: bool = False) -> bool:
    """Progress is for people at a terminal: not for JSON output, pipes, CI or dumb terminals."""
    if as_json or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty() and sys.stderr.isatty()


@contextmanager
def shown(enabled: bool) -> Iterator[None]:
    """Draw the steps of the work inside this block (when `enabled`); nothing is drawn until a step
    starts, so a prompt before the work is never covered by a bar."""
    if not enabled:
        yield
        return
    reporter = _Reporter()
    token = _active.set(reporter)
    try:
        yield
    finally:
        reporter.close()
        _active.reset(token)


@contextmanager
def task(description: str, total: int | None = None) -> Iterator[None]:
    """A step of work: a bar when `total` is known, a spinner otherwise. Nested steps stack."""
    reporter = _active.get()
    if reporter is None:
        yield
        return
    task_id = reporter.begin(description, total)
    try:
        yield
    finally:
        reporter.end(task_id)


def advance(amount: int = 1) -> None:
    """Count `amount` more units of the innermost step."""
    reporter = _active.get()
    if reporter is not None and reporter.tasks:
        reporter.bar.advance(reporter.tasks[-1], amount)


def track(items: Sequence[T], description: str) -> Iterator[T]:
    """`items`, counted as a step of that many units (a one-line hook for an existing loop)."""
    with task(description, len(items)):
        for item in items:
            yield item
            advance()
