"""HTML pages of the fact team: queue, ticket page and every workflow action (POST-redirect-GET)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.responses import HTMLResponse, Response

from fact_team_console import ticket_detail, ticket_queue, workflow
from fact_team_console.security import MAX_ID, CurrentUser, DbSession, Reviewer, RowId, Worker, csrf_protect
from fact_team_console.settings import get_console_settings
from fact_team_console.templating import flash, render
from fact_team_console.users import list_users
from fact_team_console.workflow import VerdictForm, WorkflowError
from knowledge_base.models import Claim, Role, StaffUser, Verdict

router = APIRouter(include_in_schema=False)
MAX_FIELD = 5000


@router.get("/")
def queue_page(
    request: Request,
    user: CurrentUser,
    session: DbSession,
    status: str = "open",
    assignee: str = "",
    topic: str = Query("", max_length=100),
    q: str = Query("", max_length=200),
    sort: ticket_queue.Sort = ticket_queue.Sort.asks,
    page: int = Query(1, ge=1, le=10_000),
) -> HTMLResponse:
    f = ticket_queue.QueueFilter(status=status, assignee=assignee, topic=topic, q=q, sort=sort, page=page)
    size = get_console_settings().queue_page_size
    try:
        rows, total = ticket_queue.list_queue(f, session=session, page_size=size)
        error = None
    except ValueError as exc:
        rows, total, error = [], 0, str(exc)
    context = {
        "user": user,
        "rows": rows,
        "total": total,
        "f": f,
        "error": error,
        "page_size": size,
        "topics": ticket_queue.topics(session),
        "staff": ticket_detail.usernames(session),
    }
    partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "queue-rows"
    return render(request, "_queue_rows.html" if partial else "queue.html", context)


@router.post("/tickets/merge", dependencies=[Depends(csrf_protect)])
def merge_tickets(
    request: Request,
    user: Worker,
    session: DbSession,
    ids: Annotated[list[int], Form()] = [],  # noqa: B006 - FastAPI copies defaults per request
) -> RedirectResponse:
    try:
        target = workflow.merge([i for i in ids if 0 < i <= MAX_ID], user=user, session=session)
    except WorkflowError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return RedirectResponse("/", status_code=303)
    session.commit()
    flash(request, f"{len(set(ids)) - 1} tiket digabung ke tiket #{target.id}.")
    return RedirectResponse(f"/tickets/{target.id}", status_code=303)


def _form_from_verdict(
    verdict: Verdict | None,
    claim: Claim,
) -> VerdictForm:
    if verdict is None:
        return VerdictForm(claim=claim.text)
    expires = verdict.expires_at.date().isoformat() if verdict.expires_at else ""
    return VerdictForm(verdict.claim, verdict.rating, verdict.summary, "\n".join(verdict.sources), expires)


def ticket_page(
    request: Request,
    claim_id: int,
    user: StaffUser,
    session: Session,
    form: VerdictForm | None = None,
    status_code: int = 200,
) -> Response:
    ticket = ticket_detail.load(session, claim_id)
    if ticket is None:
        raise HTTPException(404, "Tiket tidak ditemukan")
    if ticket.claim.status == "merged" and ticket.claim.merged_into_id:
        return RedirectResponse(f"/tickets/{ticket.claim.merged_into_id}", status_code=303)
    context = {
        "user": user,
        "t": ticket,
        "form": form or _form_from_verdict(ticket.verdict, ticket.claim),
        "assignable": [(u.id, u.username) for u in list_users(session) if u.active and u.role != Role.comms],
    }
    return render(request, "ticket.html", context, status_code=status_code)


@router.get("/tickets/{claim_id}")
def ticket_view(
    request: Request,
    claim_id: RowId,
    user: CurrentUser,
    session: DbSession,
) -> Response:
    return ticket_page(request, claim_id, user, session)


@router.get("/tickets/{claim_id}/evidence")
def ticket_evidence(
    request: Request,
    claim_id: RowId,
    user: CurrentUser,
    session: DbSession,
) -> HTMLResponse:
    if session.get(Claim, claim_id) is None:
        raise HTTPException(404, "Tiket tidak ditemukan")
    return render(request, "_evidence.html", {"ev": ticket_detail.evidence(session, claim_id)})


def _back(
    claim_id: RowId,
) -> RedirectResponse:
    return RedirectResponse(f"/tickets/{claim_id}", status_code=303)


def _run(
    request: Request, session: Session, claim_id: int, ok: str, step: Callable[[], object]
) -> RedirectResponse:
    """Run one workflow step, commit it, and come back to the ticket with a message either way."""
    try:
        step()
    except WorkflowError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return _back(claim_id)
    session.commit()
    flash(request, ok)
    return _back(claim_id)


@router.post("/tickets/{claim_id}/assign", dependencies=[Depends(csrf_protect)])
def assign_ticket(
    request: Request,
    claim_id: RowId,
    user: Worker,
    session: DbSession,
    assignee: str = Form(""),
) -> RedirectResponse:
    target = (
        user.id
        if assignee == "me"
        else (int(assignee) if assignee.isdigit() and len(assignee) <= 9 else None)
    )
    return _run(
        request,
        session,
        claim_id,
        "Penugasan disimpan.",
        lambda: workflow.assign(claim_id, target, user=user, session=session),
    )


@router.post("/tickets/{claim_id}/topic", dependencies=[Depends(csrf_protect)])
def topic_ticket(
    request: Request,
    claim_id: RowId,
    user: Worker,
    session: DbSession,
    topic: str = Form("", max_length=200),
) -> RedirectResponse:
    return _run(
        request,
        session,
        claim_id,
        "Topik disimpan.",
        lambda: workflow.set_topic(claim_id, topic, user=user, session=session),
    )


@router.post("/tickets/{claim_id}/notes", dependencies=[Depends(csrf_protect)])
def note_ticket(
    request: Request,
    claim_id: RowId,
    user: Worker,
    session: DbSession,
    text: str = Form("", max_length=MAX_FIELD),
) -> RedirectResponse:
    return _run(
        request,
        session,
        claim_id,
        "Catatan ditambahkan.",
        lambda: workflow.add_note(claim_id, text, user=user, session=session),
    )


@router.post("/tickets/{claim_id}/verdict", dependencies=[Depends(csrf_protect)])
def verdict_ticket(
    request: Request,
    claim_id: RowId,
    user: Worker,
    session: DbSession,
    claim: str = Form("", max_length=MAX_FIELD),
    rating: str = Form("", max_length=40),
    summary: str = Form("", max_length=MAX_FIELD),
    sources: str = Form("", max_length=MAX_FIELD),
    expires_on: str = Form("", max_length=20),
    action: str = Form("save"),
) -> Response:
    form = VerdictForm(claim, rating, summary, sources, expires_on)
    try:
        workflow.save_draft(claim_id, form, user=user, session=session, submit=action == "submit")
    except WorkflowError as exc:
        session.rollback()
        form.errors = [str(exc)]
        return ticket_page(request, claim_id, user, session, form=form, status_code=422)
    session.commit()
    flash(request, "Vonis dikirim untuk ditinjau." if action == "submit" else "Draf disimpan.")
    return _back(claim_id)


def _verdict_claim(
    session: Session,
    verdict_id: RowId,
) -> int:
    verdict = session.get(Verdict, verdict_id)
    if verdict is None or verdict.claim_id is None:
        raise HTTPException(404, "Vonis tidak ditemukan")
    return verdict.claim_id


@router.post("/verdicts/{verdict_id}/approve", dependencies=[Depends(csrf_protect)])
def approve_verdict(
    request: Request,
    verdict_id: RowId,
    user: Reviewer,
    session: DbSession,
) -> RedirectResponse:
    claim_id = _verdict_claim(session, verdict_id)
    try:
        notified = workflow.approve(verdict_id, user=user, session=session)
    except WorkflowError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return _back(claim_id)
    session.commit()
    flash(request, f"Vonis terbit; {notified} warga akan diberi tahu.")
    return _back(claim_id)


@router.post("/verdicts/{verdict_id}/send-back", dependencies=[Depends(csrf_protect)])
def send_back_verdict(
    request: Request,
    verdict_id: RowId,
    user: Reviewer,
    session: DbSession,
    reason: str = Form("", max_length=MAX_FIELD),
) -> RedirectResponse:
    claim_id = _verdict_claim(session, verdict_id)
    return _run(
        request,
        session,
        claim_id,
        "Vonis dikembalikan ke penulis.",
        lambda: workflow.send_back(verdict_id, reason, user=user, session=session),
    )


@router.post("/verdicts/{verdict_id}/correct", dependencies=[Depends(csrf_protect)])
def correct_verdict(
    request: Request,
    verdict_id: RowId,
    user: Reviewer,
    session: DbSession,
    claim: str = Form("", max_length=MAX_FIELD),
    rating: str = Form("", max_length=40),
    summary: str = Form("", max_length=MAX_FIELD),
    sources: str = Form("", max_length=MAX_FIELD),
    expires_on: str = Form("", max_length=20),
) -> Response:
    claim_id = _verdict_claim(session, verdict_id)
    form = VerdictForm(claim, rating, summary, sources, expires_on)
    try:
        notified = workflow.correct(verdict_id, form, user=user, session=session)
    except WorkflowError as exc:
        session.rollback()
        form.errors = [str(exc)]
        return ticket_page(request, claim_id, user, session, form=form, status_code=422)
    session.commit()
    flash(request, f"Koreksi terbit; {notified} warga akan diberi tahu.")
    return _back(claim_id)


@router.post("/tickets/{claim_id}/reject", dependencies=[Depends(csrf_protect)])
def reject_ticket(
    request: Request,
    claim_id: RowId,
    user: Reviewer,
    session: DbSession,
    reason: str = Form("", max_length=MAX_FIELD),
) -> RedirectResponse:
    return _run(
        request,
        session,
        claim_id,
        "Tiket ditolak; warga diberi tahu alasannya.",
        lambda: workflow.reject(claim_id, reason, user=user, session=session),
    )
