"""The schema migrates on both backends and keeps timestamps timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from knowledge_base.db import migrate, schema_revisions
from knowledge_base.models import Source


def test_migrations_create_every_table(engine: sa.Engine) -> None:
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "source",
        "article",
        "passage",
        "verdict",
        "verdicttext",
        "claim",
        "citizenreport",
        "citizen",
        "inboundmessage",
        "notification",
        "staffuser",
        "auditlog",
        "digest",
        "digestitem",
        "scheduledjob",
    } <= tables


def test_migrate_twice_is_a_no_op(db_url: str, engine: sa.Engine) -> None:
    migrate(db_url)
    current, head = schema_revisions(db_url)
    assert head is not None and current == head
    with engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == head


def test_timestamps_round_trip_as_aware_utc(session: Session) -> None:
    wita = timezone(timedelta(hours=8))
    src = Source(
        name="pos-kupang", outlet="Pos Kupang", last_polled_at=datetime(2026, 1, 2, 8, 0, tzinfo=wita)
    )
    session.add(src)
    session.commit()
    session.expire_all()
    got = session.exec(select(Source).where(Source.name == "pos-kupang")).one()
    assert got.last_polled_at == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    assert got.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(Source(name="x", outlet="X", last_polled_at=datetime(2026, 1, 1)))
    with pytest.raises(sa.exc.StatementError, match="naive"):
        session.commit()


def test_unique_source_names(session: Session) -> None:
    session.add(Source(name="dup", outlet="A"))
    session.commit()
    session.add(Source(name="dup", outlet="B"))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


def test_rolled_back_test_transaction_leaves_nothing_behind(engine: sa.Engine) -> None:
    """The `session` fixture's isolation works on SQLite too (pysqlite needs an explicit BEGIN)."""
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            s.add(Source(name="leak-check", outlet="X"))
            s.commit()
        outer.rollback()
    with Session(engine) as s:
        assert s.exec(select(Source).where(Source.name == "leak-check")).first() is None
