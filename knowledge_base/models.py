"""SQLModel tables: the one schema every process (bot, console, CLI) shares.

Timestamps are timezone-aware UTC on SQLite and PostgreSQL alike (see `UTCDateTime`).
Embeddings are stored beside their text so any process can rebuild or extend the FAISS index
without re-embedding; the index is a cache of these rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col

from knowledge_base.vocabulary import Role, SourceKind  # defined apart: the CLI imports them cheaply


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; SQLite hands back naive values, which are read as UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts(nullable: bool = True, index: bool = False, default_now: bool = False) -> Any:
    """A timestamp field; `default_now` fills it with the current UTC time."""
    kwargs: dict[str, Any] = {"sa_type": UTCDateTime, "nullable": nullable, "index": index}
    if default_now:
        return Field(default_factory=utcnow, **kwargs)
    return Field(default=None, **kwargs)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=sa.JSON, nullable=False)


# --------------------------------------------------------------------------- sources & articles


class Source(SQLModel, table=True):
    """A trusted publisher whose feed is polled."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=120)
    outlet: str = Field(max_length=200, description="Name shown to citizens in citations")
    kind: str = Field(default=SourceKind.media, max_length=20)
    feed_url: str | None = Field(default=None, max_length=1000)
    homepage: str | None = Field(default=None, max_length=1000)
    region: str | None = Field(default=None, max_length=100)
    enabled: bool = True
    poll_interval_minutes: int = 60
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=200)
    last_polled_at: datetime | None = ts()
    last_ok_at: datetime | None = ts()
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    error_count: int = 0
    created_at: datetime = ts(nullable=False, default_now=True)
    next_poll_at: datetime | None = ts(index=True)
    last_error_at: datetime | None = ts()
    failing_since: datetime | None = ts()


class Article(SQLModel, table=True):
    """One feed item; unique by canonical URL (and by guid within its source)."""

    __table_args__ = (sa.UniqueConstraint("source_id", "guid", name="uq_article_source_guid"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id", index=True)
    guid: str = Field(max_length=1000)
    url: str = Field(max_length=1000, unique=True)
    title: str = Field(sa_type=sa.Text)
    author: str | None = Field(default=None, max_length=300)
    published_at: datetime | None = ts(index=True)
    text: str = Field(default="", sa_type=sa.Text)
    content_hash: str = Field(max_length=64, index=True)
    fetched_at: datetime = ts(nullable=False, default_now=True)


class Passage(SQLModel, table=True):
    """A chunk of an article: the unit of search and citation."""

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    position: int = 0
    text: str = Field(sa_type=sa.Text)
    embedding: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = ts(nullable=False, default_now=True)


# --------------------------------------------------------------------------- verdicts


class Rating(StrEnum):
    """Fixed rating scale of the fact team (turnbackhoax.id labels map onto it)."""

    HOAKS = "HOAKS"
    SALAH = "SALAH"
    MENYESATKAN = "MENYESATKAN"
    SEBAGIAN_BENAR = "SEBAGIAN BENAR"
    BENAR = "BENAR"
    TIDAK_TERBUKTI = "TIDAK TERBUKTI"
    PENIPUAN = "PENIPUAN"
    SATIRE = "SATIRE"


class VerdictStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    published = "published"
    withdrawn = "withdrawn"


def verdict_servable(status: str, expires_at: datetime | None, now: datetime) -> bool:
    """The one rule for serving a verdict to a citizen as current: published, not withdrawn, not expired."""
    return status == VerdictStatus.published and (expires_at is None or expires_at > now)


class Verdict(SQLModel, table=True):
    """A fact-check result: imported from a fact-checker or written by the team."""

    id: int | None = Field(default=None, primary_key=True)
    claim: str = Field(sa_type=sa.Text)
    rating: str = Field(max_length=40, index=True)
    summary: str = Field(default="", sa_type=sa.Text)
    url: str | None = Field(default=None, max_length=1000)
    sources: list[str] = json_field(list)
    source_name: str | None = Field(default=None, max_length=200)
    origin: str = Field(default="import", max_length=20, description="import | console | feed")
    status: str = Field(default=VerdictStatus.published, max_length=20, index=True)
    published_at: datetime | None = ts(index=True)
    expires_at: datetime | None = ts()
    claim_id: int | None = Field(default=None, foreign_key="claim.id", index=True)
    author_id: int | None = Field(
        default=None,
        foreign_key="staffuser.id",
        description="Who started it; every writer: VerdictContributor",
    )
    reviewer_id: int | None = Field(
        default=None, foreign_key="staffuser.id", description="Who approved the current version"
    )
    version: int = 1
    created_at: datetime = ts(nullable=False, default_now=True)
    updated_at: datetime = ts(nullable=False, default_now=True)

    def is_servable(self, now: datetime | None = None) -> bool:
        return verdict_servable(self.status, self.expires_at, now or utcnow())

    @classmethod
    def servable_clause(cls, now: datetime | None = None) -> sa.ColumnElement[bool]:
        """`verdict_servable` as a WHERE clause."""
        expires = col(cls.expires_at)
        return sa.and_(
            col(cls.status) == VerdictStatus.published, sa.or_(expires.is_(None), expires > (now or utcnow()))
        )


class VerdictContributor(SQLModel, table=True):
    """Someone who wrote (some of) one version of a verdict's text; four-eyes review bars them from
    approving that version. A correction's writers include those of the version it corrects."""

    __table_args__ = (
        sa.UniqueConstraint("verdict_id", "version", "staff_id", name="uq_verdictcontributor_staff"),
    )

    id: int | None = Field(default=None, primary_key=True)
    verdict_id: int = Field(foreign_key="verdict.id", index=True)
    version: int
    staff_id: int = Field(foreign_key="staffuser.id")
    created_at: datetime = ts(nullable=False, default_now=True)


class VerdictCorrection(SQLModel, table=True):
    """The next version of a published verdict while it is written and reviewed (`draft`, `in_review`);
    citizens see it only once someone who wrote none of it approves it (`published`)."""

    __table_args__ = (sa.UniqueConstraint("verdict_id", "version", name="uq_verdictcorrection_version"),)

    id: int | None = Field(default=None, primary_key=True)
    verdict_id: int = Field(foreign_key="verdict.id", index=True)
    version: int = Field(description="The verdict's version once this correction is published")
    claim: str = Field(sa_type=sa.Text)
    rating: str = Field(max_length=40)
    summary: str = Field(default="", sa_type=sa.Text)
    sources: list[str] = json_field(list)
    expires_at: datetime | None = ts()
    status: str = Field(default=VerdictStatus.draft, max_length=20, index=True)
    author_id: int | None = Field(default=None, foreign_key="staffuser.id")
    reviewer_id: int | None = Field(default=None, foreign_key="staffuser.id")
    created_at: datetime = ts(nullable=False, default_now=True)
    updated_at: datetime = ts(nullable=False, default_now=True)
    published_at: datetime | None = ts()


class VerdictText(SQLModel, table=True):
    """A text a verdict is found by: its claim, its summary, or a message as it circulated."""

    __table_args__ = (sa.UniqueConstraint("verdict_id", "text_hash", name="uq_verdicttext_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    verdict_id: int = Field(foreign_key="verdict.id", index=True)
    kind: str = Field(max_length=20, description="claim | summary | message")
    text: str = Field(sa_type=sa.Text)
    text_hash: str = Field(max_length=64, index=True)
    simhash: int = Field(default=0, sa_type=sa.BigInteger)
    embedding: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = ts(nullable=False, default_now=True)


# --------------------------------------------------------------------------- citizens & messages


class Citizen(SQLModel, table=True):
    """A chat partner. `address` (chat id / phone) is only for delivery; staff see `pseudonym`."""

    __table_args__ = (sa.UniqueConstraint("channel", "pseudonym", name="uq_citizen_channel_pseudonym"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    pseudonym: str = Field(max_length=64, index=True)
    address: str | None = Field(default=None, max_length=100)
    language: str = Field(default="id", max_length=10)
    subscribed_digest: bool = False
    blocked: bool = False
    state: dict[str, Any] = json_field(dict)
    last_inbound_at: datetime | None = ts()
    created_at: datetime = ts(nullable=False, default_now=True)
    deleted_at: datetime | None = ts()


class InboundMessage(SQLModel, table=True):
    """Every citizen message, stored before it is processed (idempotent on the channel's id)."""

    __table_args__ = (sa.UniqueConstraint("channel", "external_id", name="uq_inbound_channel_external"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=200)
    citizen_id: int | None = Field(default=None, foreign_key="citizen.id", index=True)
    kind: str = Field(default="text", max_length=30)
    text: str | None = Field(default=None, sa_type=sa.Text)
    payload: dict[str, Any] = json_field(dict)
    received_at: datetime = ts(nullable=False, default_now=True, index=True)
    intent: str | None = Field(default=None, max_length=50)
    confidence: float | None = None
    nlu_source: str | None = Field(default=None, max_length=20)
    replies: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON)
    processed_at: datetime | None = ts()
    replied_at: datetime | None = ts()
    error: str | None = Field(default=None, sa_type=sa.Text)


class Feedback(SQLModel, table=True):
    """A citizen's helpful / not helpful rating of one answer."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="inboundmessage.id", index=True)
    helpful: bool
    created_at: datetime = ts(nullable=False, default_now=True)


# --------------------------------------------------------------------------- claims (tickets)


class ClaimStatus(StrEnum):
    new = "new"
    investigating = "investigating"
    in_review = "in_review"
    published = "published"
    rejected = "rejected"
    merged = "merged"


OPEN_CLAIM_STATUSES: tuple[ClaimStatus, ...] = (
    ClaimStatus.new,
    ClaimStatus.investigating,
    ClaimStatus.in_review,
)
"""Tickets the fact team still works on; every other status is closed."""


class Claim(SQLModel, table=True):
    """A ticket for the fact team: one claim, however many citizens asked about it."""

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_type=sa.Text, description="Representative text (first ask)")
    text_hash: str = Field(max_length=64, index=True)
    simhash: int = Field(default=0, sa_type=sa.BigInteger)
    embedding: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    status: str = Field(default=ClaimStatus.new, max_length=20, index=True)
    topic: str | None = Field(default=None, max_length=100)
    ask_count: int = 0
    first_asked_at: datetime = ts(nullable=False, default_now=True)
    last_asked_at: datetime = ts(nullable=False, default_now=True)
    assignee_id: int | None = Field(default=None, foreign_key="staffuser.id")
    merged_into_id: int | None = Field(default=None, foreign_key="claim.id")
    reject_reason: str | None = Field(default=None, sa_type=sa.Text)
    closed_at: datetime | None = ts()


class CitizenReport(SQLModel, table=True):
    """One ask of a claim by a citizen; text and citizen are cleared when the citizen deletes data."""

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    citizen_id: int | None = Field(default=None, foreign_key="citizen.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="inboundmessage.id")
    text: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = ts(nullable=False, default_now=True)


class ClaimNote(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="staffuser.id")
    text: str = Field(sa_type=sa.Text)
    created_at: datetime = ts(nullable=False, default_now=True)


# --------------------------------------------------------------------------- notifications


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


class Notification(SQLModel, table=True):
    """Outbox row: one message promised to one citizen; `dedupe_key` makes enqueueing idempotent."""

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    citizen_id: int | None = Field(default=None, foreign_key="citizen.id", index=True)
    channel: str = Field(max_length=20)
    kind: str = Field(
        max_length=30,
        description="verdict | correction | rejection | digest | digest_channel | verdict_channel",
    )
    claim_id: int | None = Field(default=None, foreign_key="claim.id")
    verdict_id: int | None = Field(default=None, foreign_key="verdict.id")
    digest_id: int | None = Field(default=None, foreign_key="digest.id", index=True)
    # Rows without a citizen (posts to the city's Telegram channel) name their chat here.
    channel_target: str | None = Field(default=None, max_length=100)
    body: str = Field(default="", sa_type=sa.Text, description="Rendered at send time when empty")
    status: str = Field(default=OutboxStatus.pending, max_length=20, index=True)
    attempts: int = 0
    next_attempt_at: datetime = ts(nullable=False, default_now=True, index=True)
    locked_until: datetime | None = ts()
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    external_id: str | None = Field(default=None, max_length=200, index=True)
    delivery_status: str | None = Field(default=None, max_length=30)
    created_at: datetime = ts(nullable=False, default_now=True)
    sent_at: datetime | None = ts()


# --------------------------------------------------------------------------- staff


class StaffUser(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=80)
    password_hash: str = Field(max_length=300)
    role: str = Field(default=Role.checker, max_length=20)
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = ts()
    created_at: datetime = ts(nullable=False, default_now=True)


class AuditLog(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts(nullable=False, default_now=True, index=True)
    user_id: int | None = Field(default=None, foreign_key="staffuser.id")
    action: str = Field(max_length=60)
    entity: str = Field(max_length=40)
    entity_id: int | None = None
    detail: dict[str, Any] = json_field(dict)


# --------------------------------------------------------------------------- digests (comms office)


class DigestStatus(StrEnum):
    draft = "draft"
    published = "published"
    discarded = "discarded"


class Digest(SQLModel, table=True):
    """A "Kabar Cek Fakta" issue: verdicts of a period with an intro and a closing text.

    Immutable once published; a correction is a new digest pointing at the one it corrects.
    `auto_key` is set only on the scheduler's weekly draft (the period's start date): its unique
    constraint keeps two racing processes from drafting the same week twice.
    """

    __table_args__ = (sa.UniqueConstraint("auto_key", name="uq_digest_auto_key"),)

    id: int | None = Field(default=None, primary_key=True)
    period_start: datetime = ts(nullable=False)
    period_end: datetime = ts(nullable=False)
    intro: str = Field(default="", sa_type=sa.Text)
    outro: str = Field(default="", sa_type=sa.Text)
    status: str = Field(default=DigestStatus.draft, max_length=20, index=True)
    auto_key: str | None = Field(default=None, max_length=40)
    author_id: int | None = Field(default=None, foreign_key="staffuser.id")
    published_by_id: int | None = Field(default=None, foreign_key="staffuser.id")
    correction_of_id: int | None = Field(default=None, foreign_key="digest.id", index=True)
    correction_note: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = ts(nullable=False, default_now=True)
    updated_at: datetime = ts(nullable=False, default_now=True)
    published_at: datetime | None = ts(index=True)


class DigestItem(SQLModel, table=True):
    """One verdict in a digest, at a position; the `*_snapshot` fields freeze it when published."""

    __table_args__ = (sa.UniqueConstraint("digest_id", "verdict_id", name="uq_digestitem_verdict"),)

    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digest.id", index=True)
    verdict_id: int = Field(foreign_key="verdict.id", index=True)
    position: int = 0
    line_override: str | None = Field(default=None, max_length=300)
    claim_snapshot: str | None = Field(default=None, sa_type=sa.Text)
    rating_snapshot: str | None = Field(default=None, max_length=40)
    line_snapshot: str | None = Field(default=None, max_length=300)
    verdict_version: int | None = None


# --------------------------------------------------------------------------- scheduler


class ScheduledJob(SQLModel, table=True):
    """A periodic job's schedule and lease: one process at a time holds it (`holder`) until `lease_until`.

    Every scheduler process shares these rows, so a job runs once per interval however many
    schedulers run, and a crashed holder's lease simply expires.
    """

    name: str = Field(primary_key=True, max_length=100)
    next_run_at: datetime = ts(nullable=False, default_now=True)
    holder: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = ts()
    last_started_at: datetime | None = ts()
    last_finished_at: datetime | None = ts()
    last_outcome: str | None = Field(default=None, max_length=20, description="ok | error")
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    runs: int = 0
