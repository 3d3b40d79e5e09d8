"""Everything the ticket page shows, gathered in one place: messages, notes, verdicts, history."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from fact_team_console import audit, corrections, review
from fact_team_console.workflow import current_verdict
from knowledge_base import tickets
from knowledge_base.models import (
    AuditLog,
    Citizen,
    CitizenReport,
    Claim,
    ClaimNote,
    StaffUser,
    Verdict,
    VerdictCorrection,
)

log = logging.getLogger(__name__)


@dataclass
class Message:
    """A citizen's ask as staff may see it: pseudonym and text only, never the chat address."""

    pseudonym: str
    channel: str
    text: str
    at: datetime


@dataclass
class Note:
    author: str
    text: str
    at: datetime


@dataclass
class Ticket:
    claim: Claim
    assignee: str | None
    messages: list[Message]
    notes: list[Note]
    verdict: Verdict | None
    history: list[AuditLog]
    usernames: dict[int, str] = field(default_factory=dict)
    writers: set[int] = field(default_factory=set)  # of the verdict's current version
    correction: VerdictCorrection | None = None  # of the published verdict, being written or reviewed
    correction_writers: set[int] = field(default_factory=set)

    def names(self, ids: set[int]) -> str:
        return ", ".join(sorted(self.usernames.get(i, "?") for i in ids)) or "–"


def usernames(session: Session) -> dict[int, str]:
    return {u.id or 0: u.username for u in session.exec(select(StaffUser))}


def messages(session: Session, claim_id: int, limit: int = 500) -> list[Message]:
    query = (
        select(CitizenReport, Citizen)
        .join(Citizen, col(Citizen.id) == col(CitizenReport.citizen_id), isouter=True)
        .where(CitizenReport.claim_id == claim_id)
        .order_by(col(CitizenReport.created_at), col(CitizenReport.id))
        .limit(limit)
    )
    return [
        Message(
            pseudonym=f"warga-{citizen.pseudonym[:8]}"
            if citizen and not citizen.deleted_at
            else "(data dihapus)",
            channel=citizen.channel if citizen else "",
            text=report.text or "(pesan dihapus atas permintaan warga)",
            at=report.created_at,
        )
        for report, citizen in session.exec(query)
    ]


def notes(session: Session, claim_id: int, names: dict[int, str]) -> list[Note]:
    query = select(ClaimNote).where(ClaimNote.claim_id == claim_id).order_by(col(ClaimNote.created_at))
    return [Note(names.get(n.author_id or 0, "?"), n.text, n.created_at) for n in session.exec(query)]


def load(session: Session, claim_id: int) -> Ticket | None:
    claim = session.get(Claim, claim_id)
    if claim is None:
        return None
    names = usernames(session)
    verdict = current_verdict(session, claim_id)
    history = audit.recent(session, entity="claim", entity_id=claim_id, limit=50)
    ticket = Ticket(
        claim=claim,
        assignee=names.get(claim.assignee_id) if claim.assignee_id else None,
        messages=messages(session, claim_id),
        notes=notes(session, claim_id, names),
        verdict=verdict,
        history=history,
        usernames=names,
    )
    if verdict is not None and verdict.id is not None:
        history += audit.recent(session, entity="verdict", entity_id=verdict.id, limit=50)
        history.sort(key=lambda a: (a.at, a.id or 0), reverse=True)
        ticket.writers = review.writers(session, verdict.id, verdict.version)
        ticket.correction = corrections.open_correction(session, verdict.id)
        if ticket.correction is not None:
            ticket.correction_writers = review.writers(session, verdict.id, ticket.correction.version)
    return ticket


def evidence(session: Session, claim_id: int) -> dict[str, Any]:
    """Top passages and past verdicts from the knowledge base; an index problem shows, it does not break."""
    try:
        passages, verdicts = tickets.evidence_for(claim_id, session=session)
    except Exception:  # noqa: BLE001 - evidence is advisory; the ticket must stay usable
        log.exception("evidence lookup failed claim_id=%s", claim_id)
        return {"error": True, "passages": [], "verdicts": []}
    return {"error": False, "passages": passages, "verdicts": verdicts}
