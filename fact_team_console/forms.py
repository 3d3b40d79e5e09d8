"""How every console form POST ends: one step in the request's transaction, then redirect or explain.

Success commits and redirects (POST-redirect-GET) with a message. Failure rolls back and says why,
either as a message on the page it redirects to, or by rendering the form again with what was typed
(`failed`), so nothing the staff member wrote is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from fact_team_console.errors import WorkflowError
from fact_team_console.security import DbSession
from fact_team_console.templating import flash

T = TypeVar("T")


class FormPost:
    """One form POST: its request and database session, and `run`, which ends it."""

    def __init__(self, request: Request, session: DbSession) -> None:
        self.request, self.session = request, session

    def run(
        self,
        step: Callable[[], T],
        *,
        ok: str | Callable[[T], str],
        back: str,
        to: Callable[[T], str] | None = None,
        failed: Callable[[str], Response] | None = None,
        refusals: tuple[type[Exception], ...] = (WorkflowError,),
    ) -> Response:
        """Run `step`; commit, flash `ok` and redirect to `to(result)` (default: `back`).

        A refusal (`refusals`) rolls back, then renders `failed(message)` when given, else flashes
        the message and redirects to `back`.
        """
        try:
            result = step()
        except refusals as exc:
            self.session.rollback()
            if failed is not None:
                return failed(str(exc))
            flash(self.request, str(exc), "error")
            return RedirectResponse(back, status_code=303)
        self.session.commit()
        flash(self.request, ok(result) if callable(ok) else ok)
        return RedirectResponse(to(result) if to is not None else back, status_code=303)


Post = Annotated[FormPost, Depends()]
