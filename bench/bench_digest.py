"""Queueing a digest for N subscribers, side by side: `digests.publish` (one INSERT … SELECT … ON CONFLICT
per channel) against the per-row enqueue verdict notifications use (a lookup and a savepoint per citizen).

    .venv/bin/python -m bench.bench_digest [--subscribers 10000] [--postgres URL]

Each run uses a throw-away database (a temporary SQLite file; with --postgres a private schema that is
dropped afterwards). Sending through the channels is the bot's notifier and is not measured here.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from knowledge_base import digests
from knowledge_base.db import engine_for, migrate
from knowledge_base.models import Citizen, Digest, Notification, Verdict, utcnow
from knowledge_base.verdicts import _enqueue


def seed(engine: sa.Engine, n: int) -> int:
    """n reachable subscribers (a fifth on WhatsApp), a tenth more who unsubscribed, and one verdict."""
    with Session(engine) as s:
        s.add(
            Verdict(
                claim="Air PDAM Kupang tercemar racun",
                rating="HOAKS",
                published_at=utcnow() - timedelta(days=1),
            )
        )
        rows = [
            {
                "channel": "whatsapp" if i % 5 == 0 else "telegram",
                "pseudonym": f"bench-{i:07d}",
                "address": str(6_000_000 + i),
                "language": "id",
                "subscribed_digest": i < n,
                "blocked": False,
                "state": {},
                "created_at": utcnow(),
            }
            for i in range(n + n // 10)
        ]
        s.connection().execute(sa.insert(Citizen.__table__), rows)  # type: ignore[attr-defined]
        s.commit()
        draft = digests.create_draft(
            utcnow() - timedelta(days=7), utcnow(), session=s, actor_id=None, via="bench"
        )
        s.commit()
        return draft.id or 0


def timed(label: str, fn: Callable[[], int]) -> float:
    started = time.perf_counter()
    added = fn()
    elapsed = time.perf_counter() - started
    print(f"  {label:<52} {elapsed * 1000:9.0f} ms  {added:>6} rows  {added / elapsed:9.0f} rows/s")
    return elapsed


def run(url: str, n: int) -> None:
    migrate(url)
    engine = engine_for(url)
    digest_id = seed(engine, n)
    print(f"{url.split('?')[0].split('@')[-1]}: {n} subscribers")

    def publish() -> int:
        with Session(engine) as s:
            report = digests.publish(digest_id, session=s, actor_id=None, via="bench")
            s.commit()
            return report.total

    def per_row() -> int:
        with Session(engine) as s:
            people = s.exec(select(Citizen).where(digests.reachable_subscribers())).all()
            added = _enqueue(s, people, f"baseline:{digest_id}", kind="digest", digest_id=digest_id)
            s.commit()
            return added

    def again() -> int:
        with Session(engine) as s:
            queued = digests._enqueue_subscribers(s, digest_id, utcnow())
            s.commit()
            return sum(queued.values())

    ours = timed("publish (INSERT … SELECT … ON CONFLICT)", publish)
    base = timed("baseline: per-row lookup + savepoint insert", per_row)
    timed("publish repeated (everything already queued)", again)
    print(f"  ratio baseline / ours: {base / ours:.1f}×")
    with Session(engine) as s:
        queued = s.exec(
            select(sa.func.count()).select_from(Notification).where(Notification.digest_id == digest_id)
        )
        assert queued.one() == 2 * n, "each subscriber once per key prefix"
        assert s.get(Digest, digest_id) is not None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--postgres", help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", args.subscribers)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            run(f"{args.postgres}?options=-csearch_path%3D{schema}", args.subscribers)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
