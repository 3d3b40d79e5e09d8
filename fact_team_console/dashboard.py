"""Figures for the dashboard: tickets per day, time to verdict, backlog by age, top claims this week.

Computed in Python over a bounded window so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from sqlmodel import Session, col, func, select

from fact_team_console.ticket_queue import preview
from knowledge_base.dates import WITA
from knowledge_base.models import (
    OPEN_CLAIM_STATUSES,
    CitizenReport,
    Claim,
    ClaimStatus,
    Verdict,
    VerdictStatus,
    utcnow,
)

AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 hari", 1),
    ("1–3 hari", 3),
    ("3–7 hari", 7),
    ("> 7 hari", 1e9),
)


@dataclass
class Bar:
    label: str
    value: float


@dataclass
class TopClaim:
    id: int
    preview: str
    asks_this_week: int
    status: str


@dataclass
class Stats:
    tickets_per_day: list[Bar]
    median_hours_to_verdict: float | None
    verdicts_counted: int
    backlog_by_age: list[Bar]
    open_total: int
    top_claims: list[TopClaim]


def tickets_per_day(session: Session, *, days: int, now: datetime) -> list[Bar]:
    """New tickets per local (WITA) day, the last `days` days, empty days included."""
    start = (now.astimezone(WITA) - timedelta(days=days - 1)).date()
    since = datetime(start.year, start.month, start.day, tzinfo=WITA)
    counts: dict[date, int] = {start + timedelta(days=i): 0 for i in range(days)}
    query = select(Claim.first_asked_at).where(
        Claim.first_asked_at >= since, Claim.status != ClaimStatus.merged
    )
    for at in session.exec(query):
        day = at.astimezone(WITA).date()
        if day in counts:
            counts[day] += 1
    return [Bar(day.strftime("%d/%m"), n) for day, n in counts.items()]


def median_hours_to_verdict(session: Session, *, now: datetime, days: int = 90) -> tuple[float | None, int]:
    """Median from a ticket's first ask to its published verdict, over verdicts of the last `days`."""
    query = (
        select(Claim.first_asked_at, Verdict.published_at)
        .join(Verdict, col(Verdict.claim_id) == col(Claim.id))
        .where(Verdict.status == VerdictStatus.published, col(Verdict.published_at).is_not(None))
        .where(col(Verdict.published_at) >= now - timedelta(days=days))
    )
    hours = [
        (pub - asked).total_seconds() / 3600 for asked, pub in session.exec(query) if pub and pub >= asked
    ]
    return (round(median(hours), 1) if hours else None), len(hours)


def backlog_by_age(session: Session, *, now: datetime) -> list[Bar]:
    counts = [0] * len(AGE_BUCKETS)
    query = select(Claim.first_asked_at).where(col(Claim.status).in_(OPEN_CLAIM_STATUSES))
    for at in session.exec(query):
        age_days = (now - at).total_seconds() / 86400
        index = next(i for i, (_, limit) in enumerate(AGE_BUCKETS) if age_days < limit)
        counts[index] += 1
    return [Bar(label, n) for (label, _), n in zip(AGE_BUCKETS, counts, strict=True)]


def top_claims(session: Session, *, now: datetime, limit: int = 10) -> list[TopClaim]:
    asks = func.count(col(CitizenReport.id)).label("asks")
    query = (
        select(Claim, asks)
        .join(CitizenReport, col(CitizenReport.claim_id) == col(Claim.id))
        .where(CitizenReport.created_at >= now - timedelta(days=7), Claim.status != ClaimStatus.merged)
        .group_by(col(Claim.id))
        .order_by(asks.desc(), col(Claim.id))
        .limit(limit)
    )
    return [TopClaim(c.id or 0, preview(c.text, 120), n, c.status) for c, n in session.exec(query)]


def compute(session: Session, *, now: datetime | None = None, days: int = 14) -> Stats:
    now = now or utcnow()
    backlog = backlog_by_age(session, now=now)
    med, counted = median_hours_to_verdict(session, now=now)
    return Stats(
        tickets_per_day=tickets_per_day(session, days=days, now=now),
        median_hours_to_verdict=med,
        verdicts_counted=counted,
        backlog_by_age=backlog,
        open_total=int(sum(b.value for b in backlog)),
        top_claims=top_claims(session, now=now),
    )
