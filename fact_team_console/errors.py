"""The one error a workflow step raises: its message is shown to the staff member as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WorkflowError(ValueError):
    """A step that is not allowed now, or bad input; the message is shown to the staff member."""


def kb_call(step: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the knowledge base; its refusals (bad value, missing row) become messages for staff."""
    try:
        return step(*args, **kwargs)
    except (ValueError, LookupError) as exc:
        raise WorkflowError(f"Ditolak basis pengetahuan: {exc}") from exc
