"""The triage queue: open tickets with filters, sorting and paging, read straight from the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from fact_team_console.inputs import clean
from knowledge_base.models import OPEN_CLAIM_STATUSES, CitizenReport, Claim, ClaimStatus, StaffUser

PREVIEW_CHARS = 160


class Sort(StrEnum):
    asks = "asks"
    oldest = "oldest"
    newest = "newest"
    recent = "recent"


@dataclass
class QueueFilter:
    """What the queue shows. `status="open"` means every status still waiting for the team."""

    status: str = "open"
    assignee: str = ""  # "" any, "none" unassigned, or a user id
    topic: str = ""
    q: str = ""
    sort: Sort = Sort.asks
    page: int = 1

    def __post_init__(self) -> None:
        self.q, self.topic = clean(self.q), clean(self.topic)


@dataclass
class QueueRow:
    id: int
    preview: str
    status: str
    topic: str | None
    ask_count: int
    first_asked_at: datetime
    last_asked_at: datetime
    assignee: str | None


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _where(f: QueueFilter) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if f.status == "open":
        clauses.append(col(Claim.status).in_(OPEN_CLAIM_STATUSES))
    elif f.status in {s.value for s in ClaimStatus}:
        clauses.append(Claim.status == f.status)
    elif f.status != "all":
        raise ValueError(f"unknown status {f.status!r}")
    if f.status == "all":
        clauses.append(Claim.status != ClaimStatus.merged)
    if f.assignee == "none":
        clauses.append(col(Claim.assignee_id).is_(None))
    elif f.assignee:
        if not f.assignee.isdigit() or len(f.assignee) > 9:
            raise ValueError("assignee must be a user id or 'none'")
        clauses.append(Claim.assignee_id == int(f.assignee))
    if f.topic:
        clauses.append(Claim.topic == f.topic)
    if f.q.strip():
        pattern = f"%{f.q.strip().lower()}%"
        in_reports = select(CitizenReport.claim_id).where(func.lower(CitizenReport.text).like(pattern))
        clauses.append(sa.or_(func.lower(Claim.text).like(pattern), col(Claim.id).in_(in_reports)))
    return clauses


def _order(sort: Sort) -> list[sa.ColumnElement]:
    return {
        Sort.asks: [col(Claim.ask_count).desc(), col(Claim.first_asked_at).asc()],
        Sort.oldest: [col(Claim.first_asked_at).asc()],
        Sort.newest: [col(Claim.first_asked_at).desc()],
        Sort.recent: [col(Claim.last_asked_at).desc()],
    }[sort]


def list_queue(f: QueueFilter, *, session: Session, page_size: int = 50) -> tuple[list[QueueRow], int]:
    """One page of tickets and the total count matching the filter."""
    where = _where(f)
    total = session.exec(select(func.count()).select_from(Claim).where(*where)).one()
    query = (
        select(Claim, StaffUser.username)
        .join(StaffUser, col(Claim.assignee_id) == col(StaffUser.id), isouter=True)
        .where(*where)
        .order_by(*_order(f.sort), col(Claim.id))
        .offset((max(f.page, 1) - 1) * page_size)
        .limit(page_size)
    )
    rows = [
        QueueRow(
            id=claim.id or 0,
            preview=preview(claim.text),
            status=claim.status,
            topic=claim.topic,
            ask_count=claim.ask_count,
            first_asked_at=claim.first_asked_at,
            last_asked_at=claim.last_asked_at,
            assignee=username,
        )
        for claim, username in session.exec(query)
    ]
    return rows, total


def topics(session: Session) -> list[str]:
    query = select(Claim.topic).where(col(Claim.topic).is_not(None)).distinct().order_by(col(Claim.topic))
    return [t for t in session.exec(query) if t]
