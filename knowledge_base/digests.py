"""Digests ("Kabar Cek Fakta"): drafted from a period's verdicts, edited by a comms officer, published.

Functions flush but never commit: the caller (console request, CLI command, scheduler) owns the
transaction. Every step writes an AuditLog row itself, whoever takes it. Publishing flips the status
with one conditional UPDATE and enqueues one outbox row per reachable subscriber with
`INSERT … SELECT … ON CONFLICT (dedupe_key) DO NOTHING`: publishing twice, two officers pressing
publish at once, or a retry after a crash never promise a digest twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from knowledge_base import digest_render as render
from knowledge_base.dates import WITA
from knowledge_base.digest_settings import DigestSettings, get_digest_settings
from knowledge_base.models import (
    AuditLog,
    Citizen,
    Claim,
    Digest,
    DigestItem,
    DigestStatus,
    Notification,
    OutboxStatus,
    UTCDateTime,
    Verdict,
    VerdictStatus,
    utcnow,
)

log = logging.getLogger(__name__)

PUSH_CHANNELS = ("telegram", "whatsapp")  # web and cli chats cannot be pushed to
MAX_ITEMS = 20  # a digest must stay one readable message
MAX_TEXT = 1000
MAX_LINE = 300
MAX_NOTE = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class DigestError(ValueError):
    """A step that is not allowed now, or bad input; the message (Indonesian) is shown to staff."""


def _clean(text: str) -> str:
    return _CONTROL.sub("", text or "").strip()


def _audit(session: Session, actor_id: int | None, action: str, digest_id: int | None, **detail: Any) -> None:
    session.add(
        AuditLog(user_id=actor_id, action=action, entity="digest", entity_id=digest_id, detail=detail)
    )


def _insert(session: Session, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support for the two databases we run on."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {dialect}")  # the project runs on SQLite and PostgreSQL only


def _table(model: type[Any]) -> sa.Table:
    table: sa.Table = model.__table__
    return table


# --------------------------------------------------------------------------- periods and the schedule


def default_period(now: datetime, settings: DigestSettings | None = None) -> tuple[datetime, datetime]:
    """The last `DIGEST_PERIOD_DAYS` days up to now."""
    days = (settings or get_digest_settings()).period_days
    return now - timedelta(days=days), now


def last_slot(now: datetime, settings: DigestSettings | None = None) -> datetime:
    """The latest scheduled draft time (weekday and time in Kupang) at or before `now`, in UTC."""
    settings = settings or get_digest_settings()
    local = now.astimezone(WITA)
    hour, minute = settings.hour_minute
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    slot -= timedelta(days=(local.weekday() - settings.weekday_index) % 7)
    if slot > local:
        slot -= timedelta(days=7)
    return slot.astimezone(now.tzinfo)


def next_slot(now: datetime, settings: DigestSettings | None = None) -> datetime:
    """The first scheduled draft time strictly after `now` (what a scheduler waits for)."""
    return last_slot(now, settings) + timedelta(days=7)


def weekly_period(now: datetime, settings: DigestSettings | None = None) -> tuple[datetime, datetime, str]:
    """The period of the automatic draft due at `now`: the days before the last slot, and its key."""
    settings = settings or get_digest_settings()
    end = last_slot(now, settings)
    start = end - timedelta(days=settings.period_days)
    return start, end, f"weekly:{end.astimezone(WITA).date().isoformat()}"


# --------------------------------------------------------------------------- choosing verdicts


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def period_verdicts(
    start: datetime, end: datetime, *, session: Session, limit: int | None = None
) -> list[Verdict]:
    """Current verdicts published in [start, end), most asked first (their tickets' ask counts)."""
    asks = func.coalesce(Claim.ask_count, 0)
    query = (
        select(Verdict)
        .outerjoin(Claim, col(Claim.id) == col(Verdict.claim_id))
        .where(
            Verdict.servable_clause(),
            col(Verdict.published_at) >= start,
            col(Verdict.published_at) < end,
        )
        .order_by(asks.desc(), col(Verdict.published_at).desc(), col(Verdict.id).desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query).all())


def find_verdicts(
    q: str = "",
    *,
    session: Session,
    rating: str | None = None,
    current_only: bool = True,
    exclude: Iterable[int] = (),
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[Verdict], int]:
    """Published verdicts whose claim, explanation or checker contain every word of `q`; and the total."""
    query = select(Verdict).where(
        Verdict.servable_clause() if current_only else col(Verdict.status) == VerdictStatus.published
    )
    for word in q.split()[:8]:
        pattern = f"%{_escape_like(word[:60])}%"
        query = query.where(
            sa.or_(
                col(Verdict.claim).ilike(pattern, escape="\\"),
                col(Verdict.summary).ilike(pattern, escape="\\"),
                col(Verdict.source_name).ilike(pattern, escape="\\"),
            )
        )
    if rating:
        query = query.where(Verdict.rating == rating)
    excluded = list(exclude)
    if excluded:
        query = query.where(col(Verdict.id).not_in(excluded))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Verdict.published_at).desc().nulls_last(), col(Verdict.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), int(total)


# --------------------------------------------------------------------------- drafting


def _items(session: Session, digest_id: int) -> list[DigestItem]:
    return list(
        session.exec(
            select(DigestItem).where(DigestItem.digest_id == digest_id).order_by(col(DigestItem.position))
        ).all()
    )


def _fill(session: Session, digest: Digest, settings: DigestSettings) -> int:
    verdicts = period_verdicts(
        digest.period_start, digest.period_end, session=session, limit=settings.max_items
    )
    for position, verdict in enumerate(verdicts):
        session.add(DigestItem(digest_id=digest.id or 0, verdict_id=verdict.id or 0, position=position))
    session.flush()
    return len(verdicts)


def _default_intro(start: datetime, end: datetime, settings: DigestSettings) -> str:
    return render.DEFAULT_INTRO.format(team=settings.team_name, period=render.period_label(start, end))


def create_draft(
    start: datetime, end: datetime, *, session: Session, actor_id: int | None, via: str = "console"
) -> Digest:
    """A new draft for [start, end) holding that period's most-asked verdicts (up to DIGEST_MAX_ITEMS)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise DigestError("Periode harus memakai zona waktu.")
    if end <= start:
        raise DigestError("Akhir periode harus setelah awalnya.")
    if end - start > timedelta(days=92):
        raise DigestError("Periode paling panjang 92 hari.")
    settings = get_digest_settings()
    digest = Digest(
        period_start=start,
        period_end=end,
        intro=_default_intro(start, end, settings),
        outro=render.DEFAULT_OUTRO,
        author_id=actor_id,
    )
    session.add(digest)
    session.flush()
    count = _fill(session, digest, settings)
    _audit(session, actor_id, "digest.draft", digest.id, via=via, items=count, start=start.isoformat())
    log.info("digest %s drafted (%s), %d verdicts", digest.id, via, count)
    return digest


@dataclass(frozen=True)
class WeeklyDraft:
    digest_id: int
    created: bool


def ensure_weekly_draft(now: datetime, *, session: Session) -> WeeklyDraft | None:
    """The automatic draft of the period due at `now`: created once per period, whoever calls.

    Idempotent and race-safe: the period key is unique in the table, and the insert comes first in the
    transaction (ON CONFLICT DO NOTHING), so two schedulers calling at once create one draft between
    them. Returns None when `DIGEST_AUTO_DRAFT` is off. Call it with a fresh session and commit.
    """
    settings = get_digest_settings()
    if not settings.auto_draft:
        return None
    start, end, key = weekly_period(now, settings)
    stmt = (
        _insert(session, _table(Digest))
        .values(
            period_start=start,
            period_end=end,
            intro=_default_intro(start, end, settings),
            outro=render.DEFAULT_OUTRO,
            status=DigestStatus.draft,
            auto_key=key,
            correction_note="",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["auto_key"])
        .returning(_table(Digest).c.id)
    )
    new_id = session.exec(stmt).scalar()
    if new_id is None:
        existing = session.exec(select(Digest.id).where(Digest.auto_key == key)).one()
        return WeeklyDraft(int(existing or 0), created=False)
    digest = session.get(Digest, new_id)
    assert digest is not None
    count = _fill(session, digest, settings)
    _audit(session, None, "digest.auto_draft", new_id, key=key, items=count)
    log.info("weekly digest draft %s created for %s, %d verdicts", new_id, key, count)
    return WeeklyDraft(int(new_id), created=True)


def _draft(session: Session, digest_id: int) -> Digest:
    digest = session.get(Digest, digest_id)
    if digest is None or digest.status == DigestStatus.discarded:
        raise DigestError("Kabar tidak ditemukan.")
    if digest.status != DigestStatus.draft:
        raise DigestError("Kabar yang sudah terbit tidak bisa diubah; buat koreksi.")
    return digest


def _touch(session: Session, digest: Digest) -> None:
    digest.updated_at = utcnow()
    session.add(digest)
    session.flush()


def set_texts(
    digest_id: int,
    *,
    intro: str,
    outro: str,
    correction_note: str | None = None,
    session: Session,
    actor_id: int | None,
) -> Digest:
    digest = _draft(session, digest_id)
    intro, outro = _clean(intro), _clean(outro)
    if len(intro) > MAX_TEXT or len(outro) > MAX_TEXT:
        raise DigestError(f"Pembuka dan penutup paling panjang {MAX_TEXT} karakter.")
    digest.intro, digest.outro = intro, outro
    if correction_note is not None:
        note = " ".join(_clean(correction_note).split())
        if len(note) > MAX_NOTE:
            raise DigestError(f"Keterangan koreksi paling panjang {MAX_NOTE} karakter.")
        digest.correction_note = note
    _touch(session, digest)
    _audit(session, actor_id, "digest.texts", digest_id)
    return digest


def add_item(digest_id: int, verdict_id: int, *, session: Session, actor_id: int | None) -> DigestItem:
    _draft(session, digest_id)
    verdict = session.get(Verdict, verdict_id)
    if verdict is None or not verdict.is_servable():
        raise DigestError("Hanya vonis yang terbit dan masih berlaku bisa dimasukkan.")
    items = _items(session, digest_id)
    if any(i.verdict_id == verdict_id for i in items):
        raise DigestError("Vonis itu sudah ada di kabar ini.")
    if len(items) >= MAX_ITEMS:
        raise DigestError(f"Satu kabar paling banyak {MAX_ITEMS} vonis.")
    item = DigestItem(
        digest_id=digest_id, verdict_id=verdict_id, position=max((i.position for i in items), default=-1) + 1
    )
    session.add(item)
    _touch(session, _draft(session, digest_id))
    _audit(session, actor_id, "digest.add", digest_id, verdict_id=verdict_id)
    return item


def _item(items: Sequence[DigestItem], verdict_id: int) -> DigestItem:
    for item in items:
        if item.verdict_id == verdict_id:
            return item
    raise DigestError("Vonis itu tidak ada di kabar ini.")


def drop_item(digest_id: int, verdict_id: int, *, session: Session, actor_id: int | None) -> None:
    digest = _draft(session, digest_id)
    session.delete(_item(_items(session, digest_id), verdict_id))
    _touch(session, digest)
    _audit(session, actor_id, "digest.drop", digest_id, verdict_id=verdict_id)


def move_item(
    digest_id: int, verdict_id: int, offset: int, *, session: Session, actor_id: int | None
) -> None:
    """Move one verdict up (offset -1) or down (+1); positions are renumbered 0..n-1."""
    digest = _draft(session, digest_id)
    items = _items(session, digest_id)
    item = _item(items, verdict_id)
    index = items.index(item)
    target = min(max(index + offset, 0), len(items) - 1)
    items.insert(target, items.pop(index))
    for position, row in enumerate(items):
        row.position = position
        session.add(row)
    _touch(session, digest)
    _audit(session, actor_id, "digest.move", digest_id, verdict_id=verdict_id, position=target)


def set_line(digest_id: int, verdict_id: int, line: str, *, session: Session, actor_id: int | None) -> None:
    """The one-line explanation shown for a verdict; empty restores the verdict's own first sentence."""
    digest = _draft(session, digest_id)
    item = _item(_items(session, digest_id), verdict_id)
    line = " ".join(_clean(line).split())
    if len(line) > MAX_LINE:
        raise DigestError(f"Satu baris paling panjang {MAX_LINE} karakter.")
    item.line_override = line or None
    session.add(item)
    _touch(session, digest)
    _audit(session, actor_id, "digest.line", digest_id, verdict_id=verdict_id)


def discard(digest_id: int, *, session: Session, actor_id: int | None) -> None:
    """Set a draft aside (kept, so the scheduler does not draft the same week again)."""
    digest = _draft(session, digest_id)
    digest.status = DigestStatus.discarded
    _touch(session, digest)
    _audit(session, actor_id, "digest.discard", digest_id)


def start_correction(digest_id: int, *, session: Session, actor_id: int | None) -> Digest:
    """A new draft correcting a published digest: same period, texts and verdicts, to be edited."""
    original = session.get(Digest, digest_id)
    if original is None or original.status != DigestStatus.published:
        raise DigestError("Hanya kabar yang sudah terbit bisa dikoreksi.")
    draft = Digest(
        period_start=original.period_start,
        period_end=original.period_end,
        intro=original.intro,
        outro=original.outro,
        author_id=actor_id,
        correction_of_id=digest_id,
    )
    session.add(draft)
    session.flush()
    for item in _items(session, digest_id):
        session.add(
            DigestItem(
                digest_id=draft.id or 0,
                verdict_id=item.verdict_id,
                position=item.position,
                line_override=item.line_override,
            )
        )
    session.flush()
    _audit(session, actor_id, "digest.correction_draft", draft.id, corrects=digest_id)
    return draft


# --------------------------------------------------------------------------- publishing


@dataclass
class PublishReport:
    digest_id: int
    queued: dict[str, int] = field(default_factory=dict)  # channel -> subscriber rows added
    channel_post: bool = False
    already_published: bool = False

    @property
    def total(self) -> int:
        return sum(self.queued.values())


def reachable_subscribers() -> sa.ColumnElement[bool]:
    """Who gets a digest: subscribed, not deleted, not blocked, with an address on a push channel."""
    return sa.and_(
        col(Citizen.subscribed_digest).is_(True),
        col(Citizen.deleted_at).is_(None),
        col(Citizen.blocked).is_(False),
        col(Citizen.address).is_not(None),
        col(Citizen.channel).in_(PUSH_CHANNELS),
    )


def _enqueue_subscribers(session: Session, digest_id: int, now: datetime) -> dict[str, int]:
    table = _table(Notification)
    columns = ["dedupe_key", "citizen_id", "channel", "kind", "digest_id", "body", "status", "attempts"]
    columns += ["next_attempt_at", "created_at"]
    queued: dict[str, int] = {}
    for channel in PUSH_CHANNELS:
        key = sa.literal(f"digest:{digest_id}:citizen:", sa.String) + sa.cast(col(Citizen.id), sa.String)
        rows = sa.select(
            key,
            col(Citizen.id),
            col(Citizen.channel),
            sa.literal("digest", sa.String),
            sa.literal(digest_id, sa.Integer),
            sa.literal("", sa.Text),
            sa.literal(OutboxStatus.pending.value, sa.String),
            sa.literal(0, sa.Integer),
            sa.literal(now, UTCDateTime()),
            sa.literal(now, UTCDateTime()),
        ).where(reachable_subscribers(), col(Citizen.channel) == channel)
        stmt = (
            _insert(session, table)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .execution_options(preserve_rowcount=True)  # psycopg reports -1 for INSERT … SELECT otherwise
        )
        queued[channel] = session.exec(stmt).rowcount
    return queued


def enqueue_channel_post(
    session: Session, *, kind: str, key: str, digest_id: int | None = None, verdict_id: int | None = None
) -> bool:
    """One post to the city's Telegram channel (when TELEGRAM_CHANNEL_ID is set); True if added now."""
    target = get_digest_settings().telegram_channel_id.strip()
    if not target:
        return False
    now = utcnow()
    stmt = (
        _insert(session, _table(Notification))
        .values(
            dedupe_key=f"{key}:channel:{target}"[:200],
            citizen_id=None,
            channel="telegram",
            kind=kind,
            digest_id=digest_id,
            verdict_id=verdict_id,
            channel_target=target,
            body="",
            status=OutboxStatus.pending,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .execution_options(preserve_rowcount=True)
    )
    return session.exec(stmt).rowcount == 1


def on_verdict_published(verdict: Verdict, *, session: Session) -> bool:
    """Called by `verdicts.publish_verdict`: post the new verdict to the channel when so configured."""
    if verdict.id is None or not get_digest_settings().channel_post_verdicts:
        return False
    return enqueue_channel_post(
        session, kind="verdict_channel", key=f"verdict:{verdict.id}", verdict_id=verdict.id
    )


def _check_publishable(session: Session, digest: Digest, items: list[DigestItem]) -> list[Verdict]:
    if not items:
        raise DigestError("Kabar kosong: tambahkan minimal satu vonis.")
    if digest.correction_of_id is not None and not digest.correction_note.strip():
        raise DigestError("Tuliskan apa yang dikoreksi (keterangan koreksi) sebelum menerbitkan.")
    verdicts = [session.get(Verdict, item.verdict_id) for item in items]
    stale = [
        item.verdict_id for item, v in zip(items, verdicts, strict=True) if v is None or not v.is_servable()
    ]
    if stale:
        listed = ", ".join(f"#{i}" for i in stale)
        raise DigestError(f"Vonis {listed} sudah tidak berlaku; keluarkan dari kabar dulu.")
    return [v for v in verdicts if v is not None]


def publish(digest_id: int, *, session: Session, actor_id: int | None, via: str = "console") -> PublishReport:
    """Freeze the digest and promise it once to every reachable subscriber (and the channel).

    A repeated publish changes nothing and enqueues nothing (`already_published`). The status flip is
    the transaction's first statement, inside a savepoint: a refusal below undoes it, and on SQLite the
    write lock is taken before any read (a read first would make a racing publisher fail as "locked").
    """
    now = utcnow()
    with session.begin_nested():
        flipped = session.exec(
            sa.update(Digest)
            .where(col(Digest.id) == digest_id, col(Digest.status) == DigestStatus.draft)
            .values(status=DigestStatus.published, published_at=now, published_by_id=actor_id, updated_at=now)
            .execution_options(preserve_rowcount=True)
        ).rowcount
        digest = session.get(Digest, digest_id, populate_existing=True)
        if digest is None or digest.status == DigestStatus.discarded:
            raise DigestError("Kabar tidak ditemukan.")
        if not flipped:  # published before, or by another officer (or process) a moment ago
            return PublishReport(digest_id, already_published=True)
        items = _items(session, digest_id)
        verdicts = _check_publishable(session, digest, items)
        for item, verdict in zip(items, verdicts, strict=True):
            item.claim_snapshot = verdict.claim
            item.rating_snapshot = verdict.rating
            item.line_snapshot = item.line_override or render.one_line(verdict.summary)
            item.verdict_version = verdict.version
            session.add(item)
        report = PublishReport(digest_id, queued=_enqueue_subscribers(session, digest_id, now))
        report.channel_post = enqueue_channel_post(
            session, kind="digest_channel", key=f"digest:{digest_id}", digest_id=digest_id
        )
    session.flush()
    _audit(
        session,
        actor_id,
        "digest.publish",
        digest_id,
        via=via,
        queued=report.queued,
        channel_post=report.channel_post,
        corrects=digest.correction_of_id,
    )
    log.info(
        "digest %s published: %d subscribers queued, channel post %s",
        digest_id,
        report.total,
        report.channel_post,
    )
    return report


# --------------------------------------------------------------------------- reading


def _entry(
    number: int, item: DigestItem, verdict: Verdict, asks: int, published: bool, settings: DigestSettings
) -> render.DigestEntry:
    if published and item.claim_snapshot is not None:
        claim, rating, line = (
            item.claim_snapshot,
            item.rating_snapshot or verdict.rating,
            item.line_snapshot or "",
        )
        updated = verdict.version > (item.verdict_version or verdict.version)
    else:
        claim, rating = verdict.claim, verdict.rating
        line, updated = item.line_override or render.one_line(verdict.summary), False
    return render.DigestEntry(
        number=number,
        verdict_id=verdict.id or 0,
        rating=rating,
        claim=claim,
        line=line,
        url=render.verdict_url(verdict.id or 0, settings),
        checked_by=(verdict.source_name or "pemeriksa fakta lain") if verdict.origin != "console" else None,
        asks=asks,
        updated=updated,
    )


def _ref(digest: Digest, settings: DigestSettings) -> render.CorrectionRef:
    title = f"{settings.title}, {render.period_label(digest.period_start, digest.period_end)}"
    return render.CorrectionRef(digest.id or 0, title, render.digest_url(digest.id or 0, settings))


def view(digest: Digest, *, session: Session) -> render.DigestView:
    """What every rendering of this digest shows: frozen snapshots once published, live verdicts before."""
    settings = get_digest_settings()
    published = digest.status == DigestStatus.published
    rows = session.exec(
        select(DigestItem, Verdict, func.coalesce(Claim.ask_count, 0))
        .join(Verdict, col(Verdict.id) == col(DigestItem.verdict_id))
        .outerjoin(Claim, col(Claim.id) == col(Verdict.claim_id))
        .where(DigestItem.digest_id == digest.id)
        .order_by(col(DigestItem.position), col(DigestItem.id))
    ).all()
    entries = [
        _entry(n, item, verdict, int(asks), published, settings)
        for n, (item, verdict, asks) in enumerate(rows, start=1)
    ]
    original = session.get(Digest, digest.correction_of_id) if digest.correction_of_id else None
    correctors = session.exec(
        select(Digest)
        .where(Digest.correction_of_id == digest.id, Digest.status == DigestStatus.published)
        .order_by(col(Digest.id))
    ).all()
    return render.DigestView(
        id=digest.id or 0,
        status=digest.status,
        title=settings.title,
        period=render.period_label(digest.period_start, digest.period_end),
        intro=digest.intro,
        outro=digest.outro,
        entries=entries,
        url=render.digest_url(digest.id or 0, settings),
        published_at=digest.published_at,
        period_start=digest.period_start,
        period_end=digest.period_end,
        correction_of=_ref(original, settings) if original else None,
        correction_note=digest.correction_note,
        corrected_by=[_ref(d, settings) for d in correctors],
    )


def list_digests(
    *,
    session: Session,
    statuses: Sequence[str] = (DigestStatus.draft, DigestStatus.published),
    limit: int = 100,
) -> list[Digest]:
    query = (
        select(Digest)
        .where(col(Digest.status).in_(list(statuses)))
        .order_by(col(Digest.published_at).desc().nulls_first(), col(Digest.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())


def item_counts(digest_ids: Sequence[int], *, session: Session) -> dict[int, int]:
    if not digest_ids:
        return {}
    rows = session.exec(
        select(DigestItem.digest_id, func.count())
        .where(col(DigestItem.digest_id).in_(list(digest_ids)))
        .group_by(col(DigestItem.digest_id))
    ).all()
    return {int(d): int(n) for d, n in rows}


def subscriber_counts(*, session: Session) -> dict[str, int]:
    """Reachable subscribers per push channel (what a publish right now would enqueue)."""
    rows = session.exec(
        select(Citizen.channel, func.count()).where(reachable_subscribers()).group_by(col(Citizen.channel))
    ).all()
    counts = dict.fromkeys(PUSH_CHANNELS, 0)
    counts.update({str(channel): int(n) for channel, n in rows})
    return counts


@dataclass
class Deliveries:
    """Outbox state of one digest's subscriber rows; `delivered`/`read` come from WhatsApp's statuses."""

    queued: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    cancelled: int = 0
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    channel_post: str | None = None  # status of the channel post row, if any

    @property
    def total(self) -> int:
        return self.queued + self.sent + self.failed + self.cancelled


def _bucket(status: str, delivery: str | None) -> list[str]:
    if status == OutboxStatus.pending:
        return ["queued"]
    if status == OutboxStatus.cancelled:
        return ["cancelled"]
    if status == OutboxStatus.failed or delivery == "failed":
        return ["failed"]
    buckets = ["sent"]
    if delivery in ("delivered", "read"):
        buckets.append("delivered")
    if delivery == "read":
        buckets.append("read")
    return buckets


def delivery_counts(digest_ids: Sequence[int], *, session: Session) -> dict[int, Deliveries]:
    """Per digest: queued / sent / delivered / read / failed / cancelled, overall and per channel."""
    result = {d: Deliveries() for d in digest_ids}
    if not digest_ids:
        return result
    columns = [
        col(Notification.digest_id),
        col(Notification.kind),
        col(Notification.channel),
        col(Notification.status),
        col(Notification.delivery_status),
    ]
    query = (
        sa.select(*columns, func.count())
        .where(col(Notification.digest_id).in_(list(digest_ids)))
        .group_by(*columns)
    )
    rows: list[Any] = list(session.connection().execute(query).all())  # more columns than sqlmodel types
    for digest_id, kind, channel, status, delivery, n in rows:
        d = result[int(digest_id or 0)]
        if kind == "digest_channel":
            d.channel_post = status
            continue
        per = d.by_channel.setdefault(
            str(channel), dict.fromkeys(("queued", "sent", "delivered", "failed"), 0)
        )
        for bucket in _bucket(str(status), delivery):
            setattr(d, bucket, getattr(d, bucket) + int(n))
            if bucket in per:
                per[bucket] += int(n)
    return result


def pending_drafts(*, session: Session) -> list[Digest]:
    """Drafts waiting for an officer, the automatic weekly one first."""
    return list(
        session.exec(
            select(Digest)
            .where(Digest.status == DigestStatus.draft)
            .order_by(col(Digest.auto_key).is_(None), col(Digest.id).desc())
        ).all()
    )
