"""How every console form POST ends: one step in the request's transaction, then redirect or explain.

Success commits and redirects (POST-redirect-GET) with a message. Failure rolls back and says why,
either as a message on the page it redirects to, or by rendering the form again with what was typed
(`failed`), so nothing the staff member wrote is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.responses import Response

from fact_team_console.errors import WorkflowError
from fact_team_console.templating import flash

T = TypeVar("T")


def form_step(
    request: Request,
    session: Session,
    step: Callable[[], T],
    *,
    ok: str | Callable[[T], str],
    back: str,
    to: Callable[[T], str] | None = None,
    failed: Callable[[str], Response] | None = None,
    refusals: tuple[type[Exception], ...] = (WorkflowError,),
) -> Response:
    """Run `step`; commit, flash `ok` and redirect to `to(result)` (default: `back`).

    A refusal (`refusals`) rolls back, then renders `failed(message)` when given, else flashes the
    message and redirects to `back`.
    """
    try:
        result = step()
    except refusals as exc:
        session.rollback()
        if failed is not None:
            return failed(str(exc))
        flash(request, str(exc), "error")
        return RedirectResponse(back, status_code=303)
    session.commit()
    flash(request, ok(result) if callable(ok) else ok)
    return RedirectResponse(to(result) if to is not None else back, status_code=303)
