"""The triage queue: open tickets with filters, sorting and paging, read straight from the database.

`QueueFilter` is the one declaration of the filters: the API takes it as its query model (bad values:
422), the page corrects bad values to their defaults and says which (`QueueFilter.corrected`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlmodel import Session, col, func, select

from fact_team_console.inputs import clean
from knowledge_base.models import OPEN_CLAIM_STATUSES, CitizenReport, Claim, ClaimStatus, StaffUser

PREVIEW_CHARS = 160


class Sort(StrEnum):
    asks = "asks"
    oldest = "oldest"
    newest = "newest"
    recent = "recent"


STATUSES = ("open", "all", *(s.value for s in ClaimStatus))


class QueueFilter(BaseModel):
    """What the queue shows, for the page and the API alike. `status="open"`: every status still waiting."""

    status: str = Field("open", pattern="^(" + "|".join(STATUSES) + ")$")
    assignee: str = Field(
        "", pattern=r"^(|none|[0-9]{1,9})$", description="empty: anyone; none: unassigned; or a user id"
    )
    topic: str = Field("", max_length=100)
    q: str = Field("", max_length=200)
    sort: Sort = Sort.asks
    page: int = Field(1, ge=1, le=10_000)

    @field_validator("status", mode="before")
    @classmethod
    def _known_status(cls, value: object) -> object:
        if value not in STATUSES:
            raise ValueError(f"unknown status {value!r}")
        return value

    @field_validator("q", "topic")
    @classmethod
    def _storable(cls, value: str) -> str:
        return clean(value)

    @classmethod
    def corrected(cls, params: Mapping[str, str]) -> tuple[QueueFilter, list[str]]:
        """The filter from a page's query string, invalid values reset to their default and named."""
        given = {name: params[name] for name in cls.model_fields if name in params}
        try:
            return cls.model_validate(given), []
        except ValidationError as exc:
            errors = exc.errors()
        bad = {str(e["loc"][0]) for e in errors if e["loc"]}
        problems = [
            f"{e['loc'][0] if e['loc'] else '?'}: {e['msg'].removeprefix('Value error, ')}" for e in errors
        ]
        return cls.model_validate({k: v for k, v in given.items() if k not in bad}), problems


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
    elif f.status == "all":
        clauses.append(col(Claim.status) != ClaimStatus.merged)
    else:
        clauses.append(col(Claim.status) == f.status)
    if f.assignee == "none":
        clauses.append(col(Claim.assignee_id).is_(None))
    elif f.assignee:
        clauses.append(col(Claim.assignee_id) == int(f.assignee))
    if f.topic:
        clauses.append(col(Claim.topic) == f.topic)
    if f.q.strip():
        pattern = f"%{f.q.strip().lower()}%"
        in_reports = select(CitizenReport.claim_id).where(func.lower(CitizenReport.text).like(pattern))
        clauses.append(sa.or_(func.lower(Claim.text).like(pattern), col(Claim.id).in_(in_reports)))
    return clauses


def _order(sort: Sort) -> list[sa.UnaryExpression[Any]]:
    orders: dict[Sort, list[sa.UnaryExpression[Any]]] = {
        Sort.asks: [col(Claim.ask_count).desc(), col(Claim.first_asked_at).asc()],
        Sort.oldest: [col(Claim.first_asked_at).asc()],
        Sort.newest: [col(Claim.first_asked_at).desc()],
        Sort.recent: [col(Claim.last_asked_at).desc()],
    }
    return orders[sort]


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
