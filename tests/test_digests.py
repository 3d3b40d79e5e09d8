"""Digests on SQLite and PostgreSQL: drafting, editing, publishing once per subscriber, the weekly draft."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from knowledge_base import digests
from knowledge_base.dates import WITA
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.digests import DigestError
from knowledge_base.models import (
    AuditLog,
    Citizen,
    Claim,
    Digest,
    DigestItem,
    Notification,
    Verdict,
    utcnow,
)
from knowledge_base.verdicts import correct_verdict, publish_verdict

NOW = datetime(2026, 3, 9, 1, 30, tzinfo=UTC)  # Monday 09:30 in Kupang


@pytest.fixture(autouse=True)
def digest_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://cekfakta.kupangkota.go.id")
    monkeypatch.delenv("TELEGRAM_CHANNEL_ID", raising=False)
    monkeypatch.delenv("TELEGRAM_CHANNEL_POST_VERDICTS", raising=False)
    get_digest_settings.cache_clear()
    yield monkeypatch
    get_digest_settings.cache_clear()


def settings_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_digest_settings.cache_clear()


def ticket(session: Session, text: str, asks: int) -> Claim:
    claim = Claim(
        text=text, text_hash=hashlib.sha256(text.encode()).hexdigest(), status="published", ask_count=asks
    )
    session.add(claim)
    session.flush()
    return claim


def verdict(
    session: Session,
    claim: str,
    *,
    rating: str = "HOAKS",
    asks: int = 0,
    published_at: datetime | None = None,
    summary: str | None = None,
    origin: str = "console",
    source_name: str | None = None,
    status: str = "published",
    expires_at: datetime | None = None,
) -> Verdict:
    ticket_id = ticket(session, claim, asks).id if asks else None
    v = Verdict(
        claim=claim,
        rating=rating,
        summary=summary or f"Pemkot Kupang membantah: {claim}. Sumber resmi tidak memuatnya.",
        origin=origin,
        source_name=source_name,
        status=status,
        published_at=published_at or NOW - timedelta(days=2),
        expires_at=expires_at,
        claim_id=ticket_id,
        url="https://turnbackhoax.id/articles/1-x" if origin == "import" else None,
    )
    session.add(v)
    session.flush()
    return v


def citizen(session: Session, n: int, channel: str = "telegram", **fields: object) -> Citizen:
    values: dict[str, object] = {"subscribed_digest": True, "address": f"{8000 + n}", **fields}
    c = Citizen(channel=channel, pseudonym=f"warga{n:04d}{uuid.uuid4().hex[:8]}", **values)
    session.add(c)
    session.flush()
    return c


def digest_rows(session: Session, digest_id: int) -> list[Notification]:
    return list(session.exec(select(Notification).where(Notification.digest_id == digest_id)).all())


def week(session: Session) -> tuple[Verdict, Verdict, Verdict]:
    """A week of verdicts: two of the team's (5 and 1 asks) and one imported from turnbackhoax.id."""
    most = verdict(session, "Air PDAM Kupang tercemar racun sianida", asks=5)
    less = verdict(session, "Jembatan Liliba ditutup permanen mulai besok", rating="SALAH", asks=1)
    imported = verdict(
        session,
        "Lowongan kerja tim dapur MBG seluruh Indonesia",
        rating="PENIPUAN",
        origin="import",
        source_name="turnbackhoax.id (Mafindo)",
    )
    return most, less, imported


# --------------------------------------------------------------------------- drafting


def test_a_draft_holds_the_periods_current_verdicts_most_asked_first(session: Session) -> None:
    most, less, imported = week(session)
    verdict(session, "Kabar lama di luar periode", asks=50, published_at=NOW - timedelta(days=30))
    verdict(session, "Kabar yang sudah kedaluwarsa", asks=9, expires_at=NOW - timedelta(days=1))
    verdict(session, "Draf yang belum terbit", asks=9, status="draft")
    start, end = NOW - timedelta(days=7), NOW
    d = digests.create_draft(start, end, session=session, actor_id=None, via="test")
    v = digests.view(d, session=session)
    assert [e.verdict_id for e in v.entries] == [most.id, less.id, imported.id]
    assert [e.asks for e in v.entries] == [5, 1, 0]
    first = v.entries[0]
    assert first.url == f"https://cekfakta.kupangkota.go.id/cek-fakta/{most.id}"
    assert first.line == "Pemkot Kupang membantah: Air PDAM Kupang tercemar racun sianida."
    assert first.checked_by is None and v.entries[2].checked_by == "turnbackhoax.id (Mafindo)"
    assert v.period == "2–9 Maret 2026" and "2–9 Maret 2026" in d.intro
    assert d.status == "draft" and d.auto_key is None


def test_the_draft_keeps_to_the_item_limit(session: Session, digest_env: pytest.MonkeyPatch) -> None:
    settings_env(digest_env, DIGEST_MAX_ITEMS="2")
    week(session)
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    assert len(digests.view(d, session=session).entries) == 2


def test_bad_periods_are_refused(session: Session) -> None:
    with pytest.raises(DigestError, match="setelah"):
        digests.create_draft(NOW, NOW - timedelta(days=1), session=session, actor_id=None)
    with pytest.raises(DigestError, match="92"):
        digests.create_draft(NOW - timedelta(days=200), NOW, session=session, actor_id=None)


# --------------------------------------------------------------------------- editing


def test_an_officer_edits_texts_reorders_drops_adds_and_overrides_a_line(session: Session) -> None:
    most, less, imported = week(session)
    extra = verdict(
        session,
        "Bantuan tunai Rp 5 juta dari Pemkot lewat tautan",
        rating="PENIPUAN",
        published_at=NOW - timedelta(days=40),
    )
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    did = d.id or 0
    digests.set_texts(
        did, intro="Halo\x00 warga Kupang!", outro="Salam kabas hoaks.", session=session, actor_id=None
    )
    digests.move_item(did, imported.id or 0, -1, session=session, actor_id=None)
    digests.move_item(did, imported.id or 0, -1, session=session, actor_id=None)
    digests.drop_item(did, less.id or 0, session=session, actor_id=None)
    found, total = digests.find_verdicts("tunai tautan", session=session, exclude=[most.id or 0])
    assert [v.id for v in found] == [extra.id] and total == 1
    digests.add_item(did, extra.id or 0, session=session, actor_id=None)
    digests.set_line(
        did, most.id or 0, "  Air PDAM aman diminum,\n uji lab normal. ", session=session, actor_id=None
    )
    session.expire_all()
    v = digests.view(session.get(Digest, did), session=session)  # type: ignore[arg-type]
    assert (v.intro, v.outro) == ("Halo warga Kupang!", "Salam kabas hoaks.")
    assert [e.verdict_id for e in v.entries] == [imported.id, most.id, extra.id]
    assert [e.number for e in v.entries] == [1, 2, 3]
    assert v.entries[1].line == "Air PDAM aman diminum, uji lab normal."
    with pytest.raises(DigestError, match="sudah ada"):
        digests.add_item(did, most.id or 0, session=session, actor_id=None)
    actions = session.exec(
        select(AuditLog.action).where(AuditLog.entity_id == did, AuditLog.entity == "digest")
    ).all()
    assert set(actions) >= {
        "digest.draft",
        "digest.texts",
        "digest.move",
        "digest.drop",
        "digest.add",
        "digest.line",
    }


def test_only_current_published_verdicts_can_be_added(session: Session) -> None:
    draft_verdict = verdict(session, "Belum terbit", status="draft")
    expired = verdict(session, "Sudah kedaluwarsa", expires_at=NOW - timedelta(days=1))
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    for v in (draft_verdict, expired):
        with pytest.raises(DigestError, match="masih berlaku"):
            digests.add_item(d.id or 0, v.id or 0, session=session, actor_id=None)


# --------------------------------------------------------------------------- publishing


def test_publish_enqueues_exactly_one_delivery_per_reachable_subscriber(session: Session) -> None:
    week(session)
    reach = [citizen(session, 1), citizen(session, 2), citizen(session, 3, "whatsapp")]
    citizen(session, 4, subscribed_digest=False)
    citizen(session, 5, deleted_at=utcnow(), address=None)
    citizen(session, 6, deleted_at=utcnow())
    citizen(session, 7, blocked=True)
    citizen(session, 8, address=None)
    citizen(session, 9, "web")
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    report = digests.publish(d.id or 0, session=session, actor_id=None, via="test")
    assert report.queued == {"telegram": 2, "whatsapp": 1} and not report.channel_post
    rows = digest_rows(session, d.id or 0)
    assert sorted(n.citizen_id or 0 for n in rows) == sorted(c.id or 0 for c in reach)
    assert {n.dedupe_key for n in rows} == {f"digest:{d.id}:citizen:{c.id}" for c in reach}
    assert {(n.kind, n.status, n.body, n.attempts) for n in rows} == {("digest", "pending", "", 0)}
    assert {n.channel for n in rows} == {"telegram", "whatsapp"}
    assert all(n.next_attempt_at.tzinfo is not None for n in rows)

    again = digests.publish(d.id or 0, session=session, actor_id=None)
    assert again.already_published and again.total == 0
    assert digests._enqueue_subscribers(session, d.id or 0, utcnow()) == {"telegram": 0, "whatsapp": 0}
    assert len(digest_rows(session, d.id or 0)) == 3
    session.expire_all()
    published = session.get(Digest, d.id)
    assert published is not None and published.status == "published" and published.published_at is not None


def test_a_published_digest_is_frozen(session: Session) -> None:
    most, less, _ = week(session)
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    did = d.id or 0
    digests.publish(did, session=session, actor_id=None)
    for step in (
        lambda: digests.set_texts(did, intro="x", outro="y", session=session, actor_id=None),
        lambda: digests.drop_item(did, most.id or 0, session=session, actor_id=None),
        lambda: digests.move_item(did, less.id or 0, -1, session=session, actor_id=None),
        lambda: digests.set_line(did, most.id or 0, "baru", session=session, actor_id=None),
        lambda: digests.discard(did, session=session, actor_id=None),
    ):
        with pytest.raises(DigestError, match="sudah terbit"):
            step()
    # A later correction of a verdict does not rewrite what subscribers were sent.
    correct_verdict(
        most.id or 0, session=session, rating="MENYESATKAN", summary="Koreksi: sebagian air keruh."
    )
    session.expire_all()
    entry = digests.view(session.get(Digest, did), session=session).entries[0]  # type: ignore[arg-type]
    assert (entry.rating, entry.updated) == ("HOAKS", True)
    assert entry.line.startswith("Pemkot Kupang membantah")


def test_publish_refuses_an_empty_digest_and_a_withdrawn_verdict(session: Session) -> None:
    empty = digests.create_draft(NOW - timedelta(days=1), NOW, session=session, actor_id=None)
    with pytest.raises(DigestError, match="kosong"):
        digests.publish(empty.id or 0, session=session, actor_id=None)
    most, _, _ = week(session)
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    most.status = "withdrawn"
    session.add(most)
    session.flush()
    with pytest.raises(DigestError, match=f"#{most.id}"):
        digests.publish(d.id or 0, session=session, actor_id=None)
    assert digest_rows(session, d.id or 0) == []


def test_a_correction_is_a_new_digest_that_says_what_it_corrects(session: Session) -> None:
    week(session)
    citizen(session, 1)
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    digests.publish(d.id or 0, session=session, actor_id=None)
    fix = digests.start_correction(d.id or 0, session=session, actor_id=None)
    assert (fix.status, fix.correction_of_id) == ("draft", d.id)
    with pytest.raises(DigestError, match="dikoreksi"):
        digests.publish(fix.id or 0, session=session, actor_id=None)
    digests.set_texts(
        fix.id or 0,
        intro=fix.intro,
        outro=fix.outro,
        correction_note="Nomor 2 salah tulis: jembatan hanya ditutup sehari.",
        session=session,
        actor_id=None,
    )
    assert digests.publish(fix.id or 0, session=session, actor_id=None).total == 1
    fixed = digests.view(fix, session=session)
    assert fixed.correction_of is not None and fixed.correction_of.digest_id == d.id
    assert [r.digest_id for r in digests.view(d, session=session).corrected_by] == [fix.id]
    assert len(fixed.entries) == 3


def test_the_channel_gets_one_post_per_digest_when_configured(
    session: Session, digest_env: pytest.MonkeyPatch
) -> None:
    settings_env(digest_env, TELEGRAM_CHANNEL_ID="@kabarcekfaktakupang")
    week(session)
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    assert digests.publish(d.id or 0, session=session, actor_id=None).channel_post
    rows = digest_rows(session, d.id or 0)
    assert [(n.kind, n.citizen_id, n.channel, n.channel_target) for n in rows] == [
        ("digest_channel", None, "telegram", "@kabarcekfaktakupang")
    ]
    assert not digests.enqueue_channel_post(
        session, kind="digest_channel", key=f"digest:{d.id}", digest_id=d.id
    )
    assert digests.delivery_counts([d.id or 0], session=session)[d.id or 0].channel_post == "pending"


def test_newly_published_verdicts_go_to_the_channel_only_when_asked(
    session: Session, digest_env: pytest.MonkeyPatch
) -> None:
    def channel_rows(verdict_id: int) -> list[Notification]:
        query = select(Notification).where(
            Notification.verdict_id == verdict_id, Notification.kind == "verdict_channel"
        )
        return list(session.exec(query).all())

    quiet = verdict(session, "Sekolah libur sebulan karena cuaca panas", status="in_review")
    settings_env(digest_env, TELEGRAM_CHANNEL_ID="-1001234567890")
    publish_verdict(quiet.id or 0, session=session)
    assert channel_rows(quiet.id or 0) == []
    loud = verdict(session, "Pemadaman listrik se-Kota Kupang tiga hari", status="in_review")
    settings_env(digest_env, TELEGRAM_CHANNEL_POST_VERDICTS="true")
    publish_verdict(loud.id or 0, session=session)
    publish_verdict(loud.id or 0, session=session)  # a repeated publish posts nothing new
    rows = channel_rows(loud.id or 0)
    assert [(n.citizen_id, n.channel_target, n.dedupe_key) for n in rows] == [
        (None, "-1001234567890", f"verdict:{loud.id}:channel:-1001234567890")
    ]


def test_counts_of_subscribers_and_of_deliveries(session: Session) -> None:
    week(session)
    before = digests.subscriber_counts(session=session)
    people = [citizen(session, n, "whatsapp" if n > 2 else "telegram") for n in range(1, 6)]
    citizen(session, 9, subscribed_digest=False)
    assert digests.subscriber_counts(session=session) == {
        "telegram": before["telegram"] + 2,
        "whatsapp": before["whatsapp"] + 3,
    }
    d = digests.create_draft(NOW - timedelta(days=7), NOW, session=session, actor_id=None)
    digests.publish(d.id or 0, session=session, actor_id=None)
    rows = {n.citizen_id: n for n in digest_rows(session, d.id or 0)}
    outcome = [("sent", None), ("failed", None), ("sent", "delivered"), ("sent", "read"), ("sent", "failed")]
    for person, (status, delivery) in zip(people, outcome, strict=True):
        row = rows[person.id]
        row.status, row.delivery_status = status, delivery
        session.add(row)
    session.flush()
    got = digests.delivery_counts([d.id or 0], session=session)[d.id or 0]
    assert (got.queued, got.sent, got.delivered, got.read, got.failed) == (0, 3, 2, 1, 2)
    assert got.by_channel["telegram"] == {"queued": 0, "sent": 1, "delivered": 0, "failed": 1}
    assert got.by_channel["whatsapp"] == {"queued": 0, "sent": 2, "delivered": 2, "failed": 1}


# --------------------------------------------------------------------------- the weekly draft


def test_the_schedule_slot_is_monday_eight_in_kupang() -> None:
    slot = digests.last_slot(NOW)
    assert slot.astimezone(WITA) == datetime(2026, 3, 9, 8, 0, tzinfo=WITA)
    just_before = datetime(2026, 3, 9, 7, 59, tzinfo=WITA)
    assert digests.last_slot(just_before).astimezone(WITA) == datetime(2026, 3, 2, 8, 0, tzinfo=WITA)
    assert digests.next_slot(just_before).astimezone(WITA) == datetime(2026, 3, 9, 8, 0, tzinfo=WITA)
    start, end, key = digests.weekly_period(NOW)
    assert (end - start, key) == (timedelta(days=7), "weekly:2026-03-09")


def test_the_schedule_follows_its_settings(digest_env: pytest.MonkeyPatch) -> None:
    settings_env(digest_env, DIGEST_DAY_OF_WEEK="friday", DIGEST_TIME="16:30")
    slot = digests.last_slot(NOW).astimezone(WITA)
    assert (slot.weekday(), slot.hour, slot.minute, slot.date().isoformat()) == (4, 16, 30, "2026-03-06")


def test_ensure_weekly_draft_is_idempotent_per_period(
    session: Session, digest_env: pytest.MonkeyPatch
) -> None:
    most, _, _ = week(session)
    first = digests.ensure_weekly_draft(NOW, session=session)
    assert first is not None and first.created
    again = digests.ensure_weekly_draft(NOW + timedelta(days=3), session=session)
    assert again == digests.WeeklyDraft(first.digest_id, created=False)
    d = session.get(Digest, first.digest_id)
    assert d is not None and d.auto_key == "weekly:2026-03-09" and d.author_id is None
    assert digests.view(d, session=session).entries[0].verdict_id == most.id
    digests.discard(first.digest_id, session=session, actor_id=None)
    assert digests.ensure_weekly_draft(NOW + timedelta(hours=1), session=session) == again  # not re-drafted
    later = digests.ensure_weekly_draft(NOW + timedelta(days=7), session=session)
    assert later is not None and later.created and later.digest_id != first.digest_id
    assert (
        session.exec(
            select(AuditLog).where(
                AuditLog.action == "digest.auto_draft", AuditLog.entity_id == first.digest_id
            )
        )
        .one()
        .user_id
        is None
    )
    settings_env(digest_env, DIGEST_AUTO_DRAFT="false")
    assert digests.ensure_weekly_draft(NOW + timedelta(days=14), session=session) is None


def _cleanup(engine: Engine, digest_ids: list[int], verdict_ids: list[int], citizen_ids: list[int]) -> None:
    with Session(engine) as s:
        s.exec(sa.delete(Notification).where(col(Notification.digest_id).in_(digest_ids)))  # type: ignore[call-overload]
        s.exec(
            sa.delete(AuditLog).where(AuditLog.entity == "digest", col(AuditLog.entity_id).in_(digest_ids))
        )  # type: ignore[call-overload]
        s.exec(sa.delete(DigestItem).where(col(DigestItem.digest_id).in_(digest_ids)))  # type: ignore[call-overload]
        s.exec(sa.delete(Digest).where(col(Digest.id).in_(digest_ids)))  # type: ignore[call-overload]
        s.exec(sa.delete(Verdict).where(col(Verdict.id).in_(verdict_ids)))  # type: ignore[call-overload]
        s.exec(sa.delete(Citizen).where(col(Citizen.id).in_(citizen_ids)))  # type: ignore[call-overload]
        s.commit()


def _race(engine: Engine, n: int, work: object) -> list[object]:
    """Run `work(session)` in n threads at once, each in its own committed transaction."""
    barrier, results, errors = threading.Barrier(n), [], []

    def run() -> None:
        try:
            with Session(engine, expire_on_commit=False) as s:
                barrier.wait(timeout=10)
                results.append(work(s))  # type: ignore[operator]
                s.commit()
        except Exception as exc:  # reported below: a race must not crash either side
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_two_processes_racing_draft_the_week_once_and_publish_it_once(engine: Engine) -> None:
    """Real commits on separate connections (not the rolled-back fixture): what two schedulers see."""
    when = datetime(2031, 6, 2, 1, 0, tzinfo=UTC)  # a week no other test uses
    with Session(engine, expire_on_commit=False) as s:
        v = Verdict(claim="Kabar balapan", rating="SALAH", published_at=when - timedelta(days=1))
        people = [
            Citizen(
                channel="telegram",
                pseudonym=f"race-{uuid.uuid4().hex}",
                address=str(n),
                subscribed_digest=True,
            )
            for n in range(3)
        ]
        s.add_all([v, *people])
        s.commit()
    digest_ids: list[int] = []
    try:
        drafted = _race(engine, 4, lambda s: digests.ensure_weekly_draft(when, session=s))
        ids = {r.digest_id for r in drafted}  # type: ignore[attr-defined]
        digest_ids = list(ids)
        assert len(ids) == 1 and sorted(r.created for r in drafted) == [False, False, False, True]  # type: ignore[attr-defined]
        did = ids.pop()
        reports = _race(engine, 3, lambda s: digests.publish(did, session=s, actor_id=None))
        assert sorted(r.already_published for r in reports) == [False, True, True]  # type: ignore[attr-defined]
        with Session(engine) as s:
            rows = s.exec(select(Notification).where(Notification.digest_id == did)).all()
            mine = {p.id for p in people}
            assert sorted(n.citizen_id for n in rows if n.citizen_id in mine) == sorted(mine)
            assert (
                s.exec(select(Digest).where(Digest.auto_key == digests.weekly_period(when)[2])).one().id
                == did
            )
    finally:
        _cleanup(engine, digest_ids, [v.id or 0], [p.id or 0 for p in people])
