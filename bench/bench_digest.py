"""A digest to N subscribers: how long it takes to be queued, and to be sent through the fake Bot API.

    .venv/bin/python -m bench.bench_digest [--subscribers 10000] [--rate 25] [--postgres URL] [--no-send]

Queueing, side by side: `digests.publish` (one INSERT … SELECT … ON CONFLICT per channel) against the
per-row enqueue verdict notifications use (a lookup and a savepoint per citizen).

Sending: the notifier (`bot.outbox.Notifier`, default batch and concurrency) delivers the digest to N
Telegram subscribers through the real python-telegram-bot client to the local fake Bot API
(tests/bot/fake_telegram.py, in this process), paced at `--rate` messages/s (BOT_TELEGRAM_MAX_PER_S),
side by side with the limiter's nominal rate and with the same notifier unpaced (what the notifier, PTB
and the database can do: the headroom above the channel's limit). A verdict notification queued right
after the digest shows the priority: how long it waited, against the wait in first-in-first-out order.

Each run uses a throw-away database (a temporary SQLite file; with --postgres a private schema that is
dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from knowledge_base import digests
from knowledge_base.db import engine_for, migrate
from knowledge_base.models import Citizen, Digest, Notification, OutboxStatus, Verdict, utcnow
from knowledge_base.verdicts import _enqueue


def seed(engine: sa.Engine, n: int, *, whatsapp_share: int = 5) -> int:
    """n reachable subscribers (one in `whatsapp_share` on WhatsApp, none with 0), a tenth more who
    unsubscribed, and one verdict; returns the id of a draft holding it."""
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
                "channel": "whatsapp" if whatsapp_share and i % whatsapp_share == 0 else "telegram",
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


def queue(url: str, n: int) -> None:
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


# --------------------------------------------------------------------------- sending


def sessions(engine: sa.Engine) -> Callable[[], AbstractContextManager[Session]]:
    @contextmanager
    def factory() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as s:
            yield s
            s.commit()

    return factory


async def send(url: str, n: int, rate: float) -> tuple[float, float]:
    """Seconds until every subscriber's row is sent, and until the verdict queued behind them is (both
    from the notifier's start); on a fresh database."""
    from telegram import Bot

    from bot.outbox import Notifier
    from bot.settings import BotSettings
    from bot.telegram import TelegramNotifier
    from tests.bot.fake_telegram import FakeTelegram

    migrate(url)
    engine = engine_for(url)
    digest_id = seed(engine, n, whatsapp_share=0)
    with Session(engine) as s:
        digests.publish(digest_id, session=s, actor_id=None, via="bench")
        asker = Citizen(channel="telegram", pseudonym="bench-asker", address="5999999")
        s.add(asker)
        s.flush()
        verdict_id = s.exec(select(Verdict.id)).first()
        s.add(
            Notification(
                dedupe_key="bench:verdict",
                citizen_id=asker.id,
                channel="telegram",
                kind="verdict",
                verdict_id=verdict_id,
            )
        )
        s.commit()
    fake = FakeTelegram().start()
    try:
        settings = BotSettings(
            TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.base_url, BOT_TELEGRAM_MAX_PER_S=rate
        )
        tg = Bot(fake.token, base_url=fake.base_url)
        await tg.initialize()
        notifier = Notifier({"telegram": TelegramNotifier(tg)}, settings, sessions(engine))
        started, started_at = time.perf_counter(), utcnow()
        while await notifier.run_once():
            pass
        elapsed = time.perf_counter() - started
        await tg.shutdown()
    finally:
        fake.stop()
    with Session(engine) as s:
        counts = s.exec(
            select(Notification.status, sa.func.count())
            .where(Notification.digest_id == digest_id)
            .group_by(Notification.status)
        ).all()
        verdict = s.exec(select(Notification).where(Notification.dedupe_key == "bench:verdict")).one()
    assert dict(counts) == {OutboxStatus.sent: n}, counts
    assert len(fake.sent()) == n + 1, "each subscriber once, and the verdict"
    assert verdict.sent_at is not None
    engine.dispose()
    return elapsed, (verdict.sent_at - started_at).total_seconds()


def sending(make_url: Callable[[str], AbstractContextManager[str]], n: int, rate: float) -> None:
    print(f"  sending to {n} Telegram subscribers through the fake Bot API (real PTB client):")
    results = {}
    for label, pace in ((f"paced at {rate:g}/s", rate), ("unpaced (BOT_TELEGRAM_MAX_PER_S=0)", 0.0)):
        with make_url(label) as url:
            elapsed, wait = asyncio.run(send(url, n, pace))
        results[label] = elapsed
        print(
            f"  {label:<52} {elapsed:9.1f} s   {n / elapsed:7.1f} msg/s"
            f"   verdict queued behind the digest: sent after {wait:.2f} s"
        )
    if rate:
        nominal = n / rate
        paced = results[f"paced at {rate:g}/s"]
        print(f"  limiter's nominal {rate:g}/s: {nominal:.1f} s; paced run / nominal: {paced / nominal:.2f}×")
        print(f"  first-in-first-out, the verdict would have waited about {nominal:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=25.0, help="BOT_TELEGRAM_MAX_PER_S for the paced run")
    parser.add_argument("--postgres", help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-send", action="store_true", help="measure queueing only")
    args = parser.parse_args()
    databases = [sqlite_db] + ([postgres_db(args.postgres)] if args.postgres else [])
    for make_url in databases:
        with make_url("queue") as url:
            queue(url, args.subscribers)
        if not args.no_send:
            sending(make_url, args.subscribers, args.rate)


@contextmanager
def sqlite_db(label: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"


def postgres_db(admin_url: str) -> Callable[[str], AbstractContextManager[str]]:
    @contextmanager
    def schema_db(label: str) -> Iterator[str]:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(admin_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield f"{admin_url}?options=-csearch_path%3D{schema}"
        finally:
            engine_for(f"{admin_url}?options=-csearch_path%3D{schema}").dispose()
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    return schema_db


if __name__ == "__main__":
    main()
