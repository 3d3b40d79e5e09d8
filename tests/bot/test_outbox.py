"""The notifier: leases, exactly-once delivery through the real PTB client against the fake Bot API,
429 with retry_after, abandoned leases, and a notifier process killed mid-batch and restarted."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select
from telegram import Bot

from bot import messages
from bot.notices import render
from bot.outbox import Notifier, claim_due
from bot.settings import BotSettings
from bot.telegram import TelegramNotifier
from knowledge_base.db import engine_for
from knowledge_base.models import Citizen, CitizenReport, Claim, Notification, OutboxStatus, Verdict, utcnow
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.bot import bot_settings
from tests.helpers.db import reusing
from tests.helpers.notifier import start_notifier, statuses
from tests.helpers.wait import eventually, wait_until


def seed(session: Session, n: int, tag: str) -> tuple[Verdict, list[Citizen]]:
    """A published verdict and `n` citizens who asked, each with one pending notification."""
    v = Verdict(
        claim="Air PDAM Kupang tercemar bakteri berbahaya",
        rating="HOAKS",
        summary="PDAM Kota Kupang memastikan air layak pakai.",
        url="https://cekfakta.example/pdam",
        published_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    session.add(v)
    session.flush()
    citizens = []
    base = int(uuid.uuid4().int % 10**9) * 100  # chat ids of this test only (other tests' rows may linger)
    for i in range(n):
        c = Citizen(channel="telegram", pseudonym=f"{tag}-{i}", address=str(base + i))
        session.add(c)
        session.flush()
        session.add(
            Notification(
                dedupe_key=f"{tag}:{v.id}:{c.id}",
                citizen_id=c.id,
                channel="telegram",
                kind="verdict",
                verdict_id=v.id,
            )
        )
        citizens.append(c)
    session.commit()
    return v, citizens


def to(fake: FakeTelegram, citizens: list[Citizen]) -> list[int]:
    """Chat ids of messages sent to these citizens (sorted; duplicates kept)."""
    ours = {int(c.address) for c in citizens}
    return sorted(int(m["chat_id"]) for m in fake.sent() if int(m["chat_id"]) in ours)


def mine(session: Session, tag: str) -> list[Notification]:
    return list(session.exec(select(Notification).where(Notification.dedupe_key.startswith(f"{tag}:"))).all())


def pending(session: Session, tag: str) -> list[Notification]:
    """This test's rows still waiting to be delivered (read fresh: the notifier commits through its own
    use of the session)."""
    session.expire_all()
    return [n for n in mine(session, tag) if n.status == OutboxStatus.pending]


def test_leases_are_exclusive_and_expire(session: Session) -> None:
    tag = uuid.uuid4().hex[:8]
    seed(session, 3, tag)
    ids = {n.id for n in mine(session, tag)}
    first = set(claim_due(session, limit=100, lease_s=60)) & ids
    assert first == ids
    assert set(claim_due(session, limit=100, lease_s=60)) & ids == set()  # still leased
    later = utcnow() + timedelta(seconds=61)
    assert set(claim_due(session, limit=100, lease_s=60, now=later)) & ids == ids  # a dead worker's rows


def test_rendered_at_send_time_from_the_verdict_and_the_own_report(session: Session) -> None:
    tag = uuid.uuid4().hex[:8]
    v, (c,) = seed(session, 1, tag)
    (n,) = mine(session, tag)
    notice = render(session, n)
    assert (
        notice is not None
        and notice.keyboard == ()
        and notice.text
        == messages.notification("verdict", v.claim, v.rating, v.summary, v.url, v.published_at)
    )
    claim = Claim(text="teks warga lain", text_hash="h", reject_reason="bukan klaim faktual")
    session.add(claim)
    session.flush()
    session.add(CitizenReport(claim_id=claim.id, citizen_id=c.id, text="teks saya sendiri"))
    rej = Notification(
        dedupe_key=f"{tag}:rej", citizen_id=c.id, channel="telegram", kind="rejection", claim_id=claim.id
    )
    session.add(rej)
    session.commit()
    notice = render(session, rej)
    assert notice is not None
    text = notice.text
    assert "teks saya sendiri" in text and "teks warga lain" not in text and "bukan klaim faktual" in text


async def notifier_for(fake: FakeTelegram, session: Session, settings: BotSettings | None = None) -> Notifier:
    tg_bot = Bot(fake.token, base_url=fake.base_url)
    await tg_bot.initialize()
    return Notifier({"telegram": TelegramNotifier(tg_bot)}, settings or bot_settings(), reusing(session))


async def test_each_citizen_gets_the_verdict_exactly_once(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    tag = uuid.uuid4().hex[:8]
    v, citizens = seed(session, 5, tag)
    notifier = await notifier_for(fake_telegram, session)
    while await notifier.run_once():
        pass
    await notifier.run_once()
    assert to(fake_telegram, citizens) == sorted(int(c.address) for c in citizens)
    sent = [m for m in fake_telegram.sent() if v.claim in m["text"]]
    assert all(v.summary in m["text"] and v.url in m["text"] for m in sent)
    rows = mine(session, tag)
    assert {(r.status, r.attempts, r.delivery_status) for r in rows} == {("sent", 1, "accepted")}
    assert all(r.external_id and r.sent_at for r in rows)


async def test_429_retry_after_is_honoured_and_nothing_is_sent_twice(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    tag = uuid.uuid4().hex[:8]
    _, citizens = seed(session, 4, tag)
    fake_telegram.fail_429, fake_telegram.retry_after = 1, 1
    notifier = await notifier_for(fake_telegram, session)
    await notifier.run_once()
    assert to(fake_telegram, citizens) == []  # the first call was refused, the rest of the batch waits too
    rows = mine(session, tag)
    assert all(r.status == "pending" and r.next_attempt_at > utcnow() for r in rows)
    assert "retry after 1" in rows[0].last_error
    assert await notifier.run_once() == 0  # not due yet
    await eventually(notifier.run_once, lambda: not pending(session, tag), what="the rows to fall due and go")
    assert to(fake_telegram, citizens) == sorted(int(c.address) for c in citizens)
    assert all(r.status == "sent" for r in mine(session, tag))


async def test_abandoned_lease_is_retried_after_it_expires(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    tag = uuid.uuid4().hex[:8]
    _, citizens = seed(session, 2, tag)
    claim_due(session, limit=100, lease_s=1)  # a worker that claimed and died
    notifier = await notifier_for(fake_telegram, session)
    await notifier.run_once()
    assert to(fake_telegram, citizens) == []
    await eventually(notifier.run_once, lambda: not pending(session, tag), what="the lease to expire")
    assert to(fake_telegram, citizens) == sorted(int(c.address) for c in citizens)


async def test_citizen_who_blocked_the_bot_fails_for_good_and_deleted_one_is_cancelled(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    tag = uuid.uuid4().hex[:8]
    _, (a, b, c) = seed(session, 3, tag)
    fake_telegram.blocked_chats.add(int(a.address))
    a.subscribed_digest = c.subscribed_digest = True
    b.address, b.deleted_at = None, utcnow()
    session.add(b)
    session.commit()
    notifier = await notifier_for(fake_telegram, session)
    while await notifier.run_once():
        pass
    rows = {r.citizen_id: r for r in mine(session, tag)}
    assert (rows[a.id].status, rows[a.id].attempts) == ("failed", 1) and "Forbidden" in rows[a.id].last_error
    assert rows[b.id].status == "cancelled"
    assert rows[c.id].status == "sent" and to(fake_telegram, [a, c]) == [int(c.address)]
    session.expire_all()
    assert session.get_one(Citizen, a.id).subscribed_digest is False  # no more digests to a blocked bot
    assert session.get_one(Citizen, c.id).subscribed_digest is True


async def test_test_chats_are_cancelled_and_unconfigured_channels_wait(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    tag = uuid.uuid4().hex[:8]
    _, (web, wa) = seed(session, 2, tag)
    web.channel, wa.channel = "web", "whatsapp"
    session.add_all([web, wa])
    session.commit()
    notifier = await notifier_for(fake_telegram, session)  # Telegram only: no WhatsApp sender here
    await notifier.run_once()
    rows = {r.citizen_id: r for r in mine(session, tag)}
    assert rows[web.id].status == "cancelled"
    assert rows[wa.id].status == "pending" and rows[wa.id].attempts == 0
    assert rows[wa.id].next_attempt_at > utcnow() + timedelta(seconds=60)


# ----------------------------------------------------------------- killed and restarted


def test_notifier_killed_mid_batch_delivers_everything_once_after_restart(
    worker_db: str, fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    with Session(engine_for(worker_db)) as s:
        _, citizens = seed(s, 12, "kill")
        chats = sorted(int(c.address) for c in citizens)
    fake_telegram.hang_after = 4  # the 5th sendMessage never returns: the worker is stuck mid-batch

    def stuck() -> bool:  # in its 5th call, with the first four marked sent
        return fake_telegram.hanging == 1 and statuses(worker_db).count("sent") == 4

    proc = start_notifier(worker_db, fake_telegram, tmp_path)
    try:
        wait_until(stuck, what="the worker to hang in its 5th send")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Session(engine_for(worker_db)) as s:
        rows = s.exec(select(Notification)).all()
        assert sum(r.status == "sent" for r in rows) == 4
        assert sum(r.locked_until is not None for r in rows) >= 1  # the dead worker's leased rows
    fake_telegram.hang_after = None
    proc = start_notifier(worker_db, fake_telegram, tmp_path)
    try:  # every row marked sent: nothing is left for this (single) worker to send again
        wait_until(lambda: statuses(worker_db) == ["sent"] * 12, what="every row to be sent")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)  # once it has exited, no late duplicate can arrive
    assert sorted(int(m["chat_id"]) for m in fake_telegram.sent()) == chats
    with Session(engine_for(worker_db)) as s:
        assert {r.status for r in s.exec(select(Notification)).all()} == {"sent"}
