"""The console's JSON API (in the OpenAPI schema): the same data and steps as the pages, for tools and tests.

State changes need the session cookie and the `X-CSRF-Token` header, like htmx requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from fact_team_console import dashboard, ticket_detail, ticket_queue, workflow
from fact_team_console.errors import WorkflowError
from fact_team_console.security import CurrentUser, DbSession, RowId, Worker, csrf_protect
from fact_team_console.settings import get_console_settings
from fact_team_console.ticket_queue import QueueRow

router = APIRouter(prefix="/api", tags=["console"])


class TicketPage(BaseModel):
    total: int
    items: list[QueueRow]  # the queue's own rows: one shape for the page and the API


class MessageOut(BaseModel):
    pseudonym: str
    channel: str
    text: str
    at: datetime


class NoteOut(BaseModel):
    author: str
    text: str
    at: datetime


class VerdictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight from a stored Verdict

    id: int
    claim: str
    rating: str
    summary: str
    sources: list[str]
    status: str
    version: int
    published_at: datetime | None


class TicketOut(BaseModel):
    id: int
    text: str
    status: str
    topic: str | None
    ask_count: int
    assignee: str | None
    messages: list[MessageOut]
    notes: list[NoteOut]
    verdict: VerdictOut | None


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=workflow.MAX_NOTE)


class AssignIn(BaseModel):
    assignee_id: int | None = Field(None, ge=1, le=2**31 - 1)


class StatsOut(BaseModel):
    tickets_per_day: dict[str, float]
    median_hours_to_verdict: float | None
    verdicts_counted: int
    backlog_by_age: dict[str, float]
    open_total: int


@router.get("/tickets", response_model=TicketPage)
def api_tickets(
    user: CurrentUser,
    session: DbSession,
    f: Annotated[ticket_queue.QueueFilter, Query()],
) -> TicketPage:
    rows, total = ticket_queue.list_queue(
        f, session=session, page_size=get_console_settings().queue_page_size
    )
    return TicketPage(total=total, items=rows)


def _ticket_out(
    session: Session,
    claim_id: RowId,
) -> TicketOut:
    t = ticket_detail.load(session, claim_id)
    if t is None:
        raise HTTPException(404, "ticket not found")
    return TicketOut(
        id=claim_id,
        text=t.claim.text,
        status=t.claim.status,
        topic=t.claim.topic,
        ask_count=t.claim.ask_count,
        assignee=t.assignee,
        messages=[MessageOut(**vars(m)) for m in t.messages],
        notes=[NoteOut(**vars(n)) for n in t.notes],
        verdict=VerdictOut.model_validate(t.verdict) if t.verdict else None,
    )


@router.get(
    "/tickets/{claim_id}", response_model=TicketOut, responses={404: {"description": "No such ticket"}}
)
def api_ticket(
    claim_id: RowId,
    user: CurrentUser,
    session: DbSession,
) -> TicketOut:
    return _ticket_out(session, claim_id)


# What every ticket step in the API declares: the ticket afterwards, CSRF, and why it may fail.
_TICKET_STEP: dict[str, Any] = {
    "response_model": TicketOut,
    "dependencies": [Depends(csrf_protect)],
    "responses": {404: {"description": "No such ticket"}, 409: {"description": "Not allowed now"}},
}


def _apply(
    session: Session,
    step: Any,
) -> None:
    try:
        step()
    except WorkflowError as exc:
        session.rollback()
        raise HTTPException(409 if "Tiket tidak ditemukan" not in str(exc) else 404, str(exc)) from exc
    session.commit()


@router.post("/tickets/{claim_id}/notes", **_TICKET_STEP)
def api_add_note(
    claim_id: RowId,
    body: NoteIn,
    user: Worker,
    session: DbSession,
) -> TicketOut:
    _apply(session, lambda: workflow.add_note(claim_id, body.text, user=user, session=session))
    return _ticket_out(session, claim_id)


@router.post("/tickets/{claim_id}/assign", **_TICKET_STEP)
def api_assign(
    claim_id: RowId,
    body: AssignIn,
    user: Worker,
    session: DbSession,
) -> TicketOut:
    _apply(session, lambda: workflow.assign(claim_id, body.assignee_id, user=user, session=session))
    return _ticket_out(session, claim_id)


@router.get("/stats", response_model=StatsOut)
def api_stats(
    user: CurrentUser,
    session: DbSession,
) -> StatsOut:
    s = dashboard.compute(session)
    return StatsOut(
        tickets_per_day={b.label: b.value for b in s.tickets_per_day},
        median_hours_to_verdict=s.median_hours_to_verdict,
        verdicts_counted=s.verdicts_counted,
        backlog_by_age={b.label: b.value for b in s.backlog_by_age},
        open_total=s.open_total,
    )
