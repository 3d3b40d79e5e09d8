"""Database leases of periodic jobs: whichever scheduler process claims a due job runs it, once.

One row per job (`ScheduledJob`). Claiming is a single conditional UPDATE ("due, and nobody holds an
unexpired lease"), atomic on SQLite (writes are serialised) and on PostgreSQL (a concurrent UPDATE
re-checks the condition on the row the winner committed), so two processes never both succeed. The
holder renews the lease while it works; if it dies, the lease expires and another process takes over.
Times come from the processes' clocks: keep them in sync (NTP) when schedulers run on several hosts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from knowledge_base.models import ScheduledJob

_MAX_ERROR = 2000


def ensure_jobs(names: list[str], now: datetime, *, session: Session) -> None:
    """Create the rows of jobs never run anywhere (due at once); known jobs keep their schedule."""
    known = set(session.exec(select(ScheduledJob.name).where(col(ScheduledJob.name).in_(names))).all())
    for name in names:
        if name in known:
            continue
        try:
            with session.begin_nested():
                session.add(ScheduledJob(name=name, next_run_at=now))
        except IntegrityError:  # another scheduler created it meanwhile
            pass
    session.commit()


def due_jobs(names: list[str], now: datetime, *, session: Session) -> list[str]:
    """Jobs among `names` that are due and not held (a read: claiming them is `try_acquire`)."""
    rows = session.exec(
        select(ScheduledJob.name).where(
            col(ScheduledJob.name).in_(names),
            col(ScheduledJob.next_run_at) <= now,
            col(ScheduledJob.lease_until).is_(None) | (col(ScheduledJob.lease_until) < now),
        )
    ).all()
    session.commit()
    return sorted(rows, key=names.index)


def next_due(names: list[str], *, session: Session) -> datetime | None:
    """The earliest `next_run_at` among these jobs."""
    when = session.exec(
        select(sa.func.min(ScheduledJob.next_run_at)).where(col(ScheduledJob.name).in_(names))
    ).one()
    session.commit()
    return when


def try_acquire(name: str, holder: str, ttl: timedelta, now: datetime, *, session: Session) -> bool:
    """Claim a due job for `ttl`; True only for the one process whose UPDATE matched."""
    result = session.execute(
        sa.update(ScheduledJob)
        .where(
            col(ScheduledJob.name) == name,
            col(ScheduledJob.next_run_at) <= now,
            col(ScheduledJob.lease_until).is_(None) | (col(ScheduledJob.lease_until) < now),
        )
        .values(holder=holder, lease_until=now + ttl, last_started_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return _rowcount(result) == 1


def renew(name: str, holder: str, ttl: timedelta, now: datetime, *, session: Session) -> bool:
    """Extend our lease; False when it is no longer ours (it expired and another process took it)."""
    result = session.execute(
        sa.update(ScheduledJob)
        .where(col(ScheduledJob.name) == name, col(ScheduledJob.holder) == holder)
        .values(lease_until=now + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return _rowcount(result) == 1


def finish(
    name: str,
    holder: str,
    now: datetime,
    *,
    next_run_at: datetime,
    outcome: str,
    error: str | None,
    session: Session,
) -> bool:
    """Release our lease and schedule the next run; False if the lease had been lost meanwhile."""
    result = session.execute(
        sa.update(ScheduledJob)
        .where(col(ScheduledJob.name) == name, col(ScheduledJob.holder) == holder)
        .values(
            holder=None,
            lease_until=None,
            next_run_at=next_run_at,
            last_finished_at=now,
            last_outcome=outcome,
            last_error=error[:_MAX_ERROR] if error else None,
            runs=col(ScheduledJob.runs) + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return _rowcount(result) == 1


def job_states(*, session: Session) -> list[ScheduledJob]:
    """Every job's schedule and lease (for status pages and tests)."""
    return list(session.exec(select(ScheduledJob).order_by(ScheduledJob.name)).all())


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
