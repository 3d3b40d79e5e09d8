"""HTML pages of the fact team: queue, ticket page and every workflow action (POST-redirect-GET)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.responses import HTMLResponse, Response

from fact_team_console import corrections, ticket_detail, ticket_queue, workflow
from fact_team_console.forms import FormPost, Post
from fact_team_console.security import MAX_ID, CurrentUser, DbSession, Reviewer, RowId, Worker, csrf_protect
from fact_team_console.settings import get_console_settings
from fact_team_console.templating import render
from fact_team_console.users import list_users
from fact_team_console.workflow import VerdictForm
from knowledge_base.models import Claim, Role, StaffUser, Verdict, VerdictCorrection

router = APIRouter(include_in_schema=False)
CSRF = [Depends(csrf_protect)]  # every state change
MAX_FIELD = 5000


def verdict_form(
    claim: str = Form("", max_length=MAX_FIELD),
    rating: str = Form("", max_length=40),
    summary: str = Form("", max_length=MAX_FIELD),
    sources: str = Form("", max_length=MAX_FIELD),
    expires_on: str = Form("", max_length=20),
) -> VerdictForm:
    """The verdict form's fields as typed (a draft and a correction share them)."""
    return VerdictForm(claim, rating, summary, sources, expires_on)


TypedVerdict = Annotated[VerdictForm, Depends(verdict_form)]


@router.get("/")
def queue_page(
    request: Request,
    user: CurrentUser,
    session: DbSession,
) -> HTMLResponse:
    f, problems = ticket_queue.QueueFilter.corrected(request.query_params)
    size = get_console_settings().queue_page_size
    rows, total = ticket_queue.list_queue(f, session=session, page_size=size)
    context = {
        "user": user,
        "rows": rows,
        "total": total,
        "f": f,
        "error": f"Filter tidak sah diabaikan ({'; '.join(problems)})." if problems else None,
        "page_size": size,
        "topics": ticket_queue.topics(session),
        "staff": ticket_detail.usernames(session),
    }
    partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "queue-rows"
    return render(request, "_queue_rows.html" if partial else "queue.html", context)


@router.post("/tickets/merge", dependencies=CSRF)
def merge_tickets(
    user: Worker,
    post: Post,
    ids: Annotated[list[int], Form()] = [],  # noqa: B006 - FastAPI copies defaults per request
) -> Response:
    return post.run(
        lambda: workflow.merge([i for i in ids if 0 < i <= MAX_ID], user=user, session=post.session),
        ok=lambda target: f"{len(set(ids)) - 1} tiket digabung ke tiket #{target.id}.",
        back="/",
        to=lambda target: f"/tickets/{target.id}",
    )


def _form_from(text: Verdict | VerdictCorrection | None, claim: Claim) -> VerdictForm:
    """The verdict form filled from a draft, a correction draft or the published text."""
    if text is None:
        return VerdictForm(claim=claim.text)
    expires = text.expires_at.date().isoformat() if text.expires_at else ""
    return VerdictForm(text.claim, text.rating, text.summary, "\n".join(text.sources), expires)


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
        "form": form or _form_from(ticket.correction or ticket.verdict, ticket.claim),
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


def _typed_again(
    post: FormPost, claim_id: int, user: StaffUser, form: VerdictForm
) -> Callable[[str], Response]:
    """On a refused verdict or correction form: the ticket page again, with what was typed and why (422)."""

    def page(message: str) -> Response:
        form.errors = [message]
        return ticket_page(post.request, claim_id, user, post.session, form=form, status_code=422)

    return page


@router.post("/tickets/{claim_id}/assign", dependencies=CSRF)
def assign_ticket(claim_id: RowId, user: Worker, post: Post, assignee: str = Form("")) -> Response:
    target = (
        user.id
        if assignee == "me"
        else (int(assignee) if assignee.isdigit() and len(assignee) <= 9 else None)
    )
    step = partial(workflow.assign, claim_id, target, user=user, session=post.session)
    return post.run(step, ok="Penugasan disimpan.", back=f"/tickets/{claim_id}")


@router.post("/tickets/{claim_id}/topic", dependencies=CSRF)
def topic_ticket(
    claim_id: RowId, user: Worker, post: Post, topic: str = Form("", max_length=200)
) -> Response:
    step = partial(workflow.set_topic, claim_id, topic, user=user, session=post.session)
    return post.run(step, ok="Topik disimpan.", back=f"/tickets/{claim_id}")


@router.post("/tickets/{claim_id}/notes", dependencies=CSRF)
def note_ticket(
    claim_id: RowId, user: Worker, post: Post, text: str = Form("", max_length=MAX_FIELD)
) -> Response:
    step = partial(workflow.add_note, claim_id, text, user=user, session=post.session)
    return post.run(step, ok="Catatan ditambahkan.", back=f"/tickets/{claim_id}")


@router.post("/tickets/{claim_id}/verdict", dependencies=CSRF)
def verdict_ticket(
    claim_id: RowId, user: Worker, post: Post, form: TypedVerdict, action: str = Form("save")
) -> Response:
    submit = action == "submit"
    return post.run(
        partial(workflow.save_draft, claim_id, form, user=user, session=post.session, submit=submit),
        ok="Vonis dikirim untuk ditinjau." if submit else "Draf disimpan.",
        back=f"/tickets/{claim_id}",
        failed=_typed_again(post, claim_id, user, form),
    )


def _verdict_claim(session: Session, verdict_id: int) -> int:
    """The ticket a verdict's actions come back to (404 for a verdict without one)."""
    verdict = session.get(Verdict, verdict_id)
    if verdict is None or verdict.claim_id is None:
        raise HTTPException(404, "Vonis tidak ditemukan")
    return verdict.claim_id


def _correction_claim(session: Session, correction_id: int) -> int:
    correction = session.get(VerdictCorrection, correction_id)
    if correction is None:
        raise HTTPException(404, "Koreksi tidak ditemukan")
    return _verdict_claim(session, correction.verdict_id)


@dataclass(frozen=True)
class ReviewButtons:
    """A text waiting for a second person (a draft verdict, a correction): where its two buttons post."""

    path: str  # with {row_id}
    ticket_of: Callable[[Session, int], int]
    approve: Callable[..., int]  # returns the notifications queued
    send_back: Callable[..., object]
    published: str
    returned: str

    def add_routes(self) -> None:
        def approve(
            row_id: RowId, user: Reviewer, post: Post, seen: str = Form("", max_length=40)
        ) -> Response:
            back = f"/tickets/{self.ticket_of(post.session, row_id)}"
            step = partial(self.approve, row_id, user=user, session=post.session, seen=seen or None)
            return post.run(step, ok=lambda n: f"{self.published}; {n} warga akan diberi tahu.", back=back)

        def send_back(
            row_id: RowId, user: Reviewer, post: Post, reason: str = Form("", max_length=MAX_FIELD)
        ) -> Response:
            back = f"/tickets/{self.ticket_of(post.session, row_id)}"
            step = partial(self.send_back, row_id, reason, user=user, session=post.session)
            return post.run(step, ok=self.returned, back=back)

        router.add_api_route(f"{self.path}/approve", approve, methods=["POST"], dependencies=CSRF)
        router.add_api_route(f"{self.path}/send-back", send_back, methods=["POST"], dependencies=CSRF)


for _buttons in (
    ReviewButtons(
        "/verdicts/{row_id}",
        _verdict_claim,
        workflow.approve,
        workflow.send_back,
        "Vonis terbit",
        "Vonis dikembalikan ke penulis.",
    ),
    ReviewButtons(
        "/corrections/{row_id}",
        _correction_claim,
        corrections.approve_correction,
        corrections.send_back_correction,
        "Koreksi terbit",
        "Koreksi dikembalikan ke penulisnya.",
    ),
):
    _buttons.add_routes()


@router.post("/verdicts/{verdict_id}/correct", dependencies=CSRF)
def correct_verdict(
    verdict_id: RowId, user: Worker, post: Post, form: TypedVerdict, action: str = Form("save")
) -> Response:
    """Draft (or submit for review) a correction; citizens see nothing until someone else approves it."""
    claim_id = _verdict_claim(post.session, verdict_id)
    submit = action == "submit"
    return post.run(
        partial(
            corrections.save_correction, verdict_id, form, user=user, session=post.session, submit=submit
        ),
        ok="Koreksi dikirim untuk ditinjau." if submit else "Draf koreksi disimpan.",
        back=f"/tickets/{claim_id}",
        failed=_typed_again(post, claim_id, user, form),
    )


@router.post("/tickets/{claim_id}/reject", dependencies=CSRF)
def reject_ticket(
    claim_id: RowId, user: Reviewer, post: Post, reason: str = Form("", max_length=MAX_FIELD)
) -> Response:
    step = partial(workflow.reject, claim_id, reason, user=user, session=post.session)
    return post.run(step, ok="Tiket ditolak; warga diberi tahu alasannya.", back=f"/tickets/{claim_id}")
