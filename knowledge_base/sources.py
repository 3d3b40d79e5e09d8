"""The registry of trusted sources: `sources.yaml` synced into the Source table, operator changes, due-ness.

The yaml file seeds and updates the registry; the database is the truth at run time, so a source the
operator disabled stays disabled when the file is synced again.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func
from sqlmodel import Session, col, select

from knowledge_base.models import Article, Source, SourceKind, utcnow
from knowledge_base.settings import PACKAGE_DIR, get_settings

log = logging.getLogger(__name__)

SAMPLES_DIR = PACKAGE_DIR / "data" / "sample_feeds"
SAMPLES_FILE = SAMPLES_DIR / "samples.yaml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")
# A failing source waits interval * 2**errors (capped), so a dead feed is not hammered every cycle.
MAX_BACKOFF_EXPONENT = 4
# ... but never more than a day (or its own interval, when that is longer).
MAX_BACKOFF = timedelta(days=1)


class SourceError(ValueError):
    """A source definition or operation the operator must correct; the message says what and where."""


def check_feed_url(url: str) -> str:
    """Only absolute http(s) URLs can be polled."""
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", url, re.IGNORECASE):
        raise SourceError(f"feed URL must be an absolute http(s) URL, got {url!r}")
    return url


class SourceSpec(BaseModel):
    """One entry of `sources.yaml` (or of the bundled samples file, which gives a local `file` instead)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    outlet: str = Field(min_length=1, max_length=200)
    kind: SourceKind = SourceKind.media
    feed_url: str | None = None
    homepage: str | None = None
    region: str | None = None
    enabled: bool = True
    poll_interval_minutes: int = Field(60, ge=5, le=7 * 24 * 60)
    verified: bool = False
    evidence: str | None = None
    file: str | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be a slug: lower-case letters, digits and '-', at most 120 characters")
        return v

    @field_validator("feed_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_feed_url(v)


def load_specs(path: Path | None = None) -> list[SourceSpec]:
    """Read and validate a sources file; any problem raises SourceError naming the entry."""
    path = path or get_settings().sources_file
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"cannot read sources file {path}: {exc}") from exc
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SourceError(f"{path}: expected a top-level 'sources:' list")
    specs: list[SourceSpec] = []
    for i, entry in enumerate(entries, 1):
        label = entry.get("name", "?") if isinstance(entry, dict) else "?"
        try:
            specs.append(SourceSpec.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SourceError(f"{path}: entry {i} ({label}): {problems}") from exc
    names = [s.name for s in specs]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise SourceError(f"{path}: duplicate source names: {', '.join(dupes)}")
    return specs


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


_SYNCED_FIELDS = ("outlet", "kind", "feed_url", "homepage", "region", "poll_interval_minutes")


def sync_sources(specs: list[SourceSpec], *, session: Session) -> SyncReport:
    """Add new sources and update descriptive fields of known ones; never re-enables a disabled source."""
    report = SyncReport()
    existing = {s.name: s for s in session.exec(select(Source)).all()}
    for spec in specs:
        source = existing.get(spec.name)
        if source is None:
            session.add(Source(**spec.model_dump(include={"name", "enabled", *_SYNCED_FIELDS})))
            report.added.append(spec.name)
            continue
        if source.feed_url != spec.feed_url:  # validators and failures of the old URL mean nothing now
            source.etag = source.last_modified = None
            source.failing_since, source.error_count = None, 0
            source.next_poll_at = utcnow()  # a new URL is tried at once
        changed = False
        for name in _SYNCED_FIELDS:
            value = getattr(spec, name)
            if getattr(source, name) != value:
                setattr(source, name, value)
                changed = True
        (report.updated if changed else report.unchanged).append(spec.name)
    session.flush()
    return report


def get_source(name: str, *, session: Session) -> Source:
    source = session.exec(select(Source).where(Source.name == name)).first()
    if source is None:
        raise SourceError(f"no source named {name!r} (see `kabashoax sources list`)")
    return source


def add_source(
    name: str,
    *,
    feed_url: str | None,
    outlet: str,
    kind: SourceKind = SourceKind.media,
    homepage: str | None = None,
    region: str | None = None,
    poll_interval_minutes: int = 60,
    session: Session,
) -> Source:
    """Register a new source (validated like a yaml entry); an existing name is an error, not an update."""
    try:
        spec = SourceSpec(
            name=name,
            outlet=outlet,
            kind=kind,
            feed_url=feed_url,
            homepage=homepage,
            region=region,
            poll_interval_minutes=poll_interval_minutes,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SourceError(problems) from exc
    if session.exec(select(Source).where(Source.name == name)).first() is not None:
        raise SourceError(f"a source named {name!r} already exists")
    source = Source(**spec.model_dump(include={"name", "enabled", *_SYNCED_FIELDS}))
    session.add(source)
    session.flush()
    return source


def list_sources(*, session: Session) -> list[Source]:
    return list(session.exec(select(Source).order_by(Source.kind, Source.name)).all())


def set_enabled(name: str, enabled: bool, *, session: Session) -> Source:
    source = get_source(name, session=session)
    if enabled and not source.enabled:
        source.next_poll_at = utcnow()  # polled at the scheduler's next look
    source.enabled = enabled
    session.add(source)
    session.flush()
    return source


def backoff_delay(source: Source) -> timedelta:
    """The wait after a poll: the interval, doubled for each failure in a row (capped)."""
    interval = timedelta(minutes=source.poll_interval_minutes)
    factor = 2 ** min(source.error_count, MAX_BACKOFF_EXPONENT)
    return min(interval * factor, max(interval, MAX_BACKOFF))


def schedule_next(source: Source, now: datetime, *, jitter: float | None = None) -> datetime:
    """When to poll again after a poll at `now`: the back-off delay, spread by +-`jitter` of itself.

    Jitter keeps sources with equal intervals (and several schedulers) from polling in lock-step.
    """
    share = get_settings().feed_jitter if jitter is None else jitter
    delay = backoff_delay(source)
    return now + delay * (1 + random.uniform(-share, share))


def next_poll_at(source: Source) -> datetime | None:
    """When the source is due again (None: now); failures back off exponentially."""
    if source.next_poll_at is not None:
        return source.next_poll_at
    if source.last_polled_at is None:
        return None
    return source.last_polled_at + backoff_delay(source)


def is_due(source: Source, now: datetime | None = None) -> bool:
    if not (source.enabled and source.feed_url):
        return False
    due_at = next_poll_at(source)
    return due_at is None or due_at <= (now or utcnow())


def pollable_sources(*, session: Session) -> list[Source]:
    """Enabled sources that have a feed URL, due or not."""
    query = select(Source).where(Source.enabled, col(Source.feed_url).is_not(None)).order_by(Source.name)
    return list(session.exec(query).all())


def due_sources(*, session: Session, now: datetime | None = None) -> list[Source]:
    """Enabled sources with a feed URL whose poll interval (with failure back-off) has passed."""
    return [s for s in pollable_sources(session=session) if is_due(s, now)]


@dataclass
class SourceStatus:
    """What an operator needs to see of one source (`kabashoax sources list`, the console, metrics)."""

    name: str
    outlet: str
    kind: str
    enabled: bool
    feed_url: str | None
    articles: int
    items_this_week: int
    last_polled_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    error_count: int
    failing_since: datetime | None
    next_poll: datetime | None  # None: never polled automatically (disabled, or no feed URL)
    failing_long: bool  # failing for at least SOURCE_FAILING_WARN_HOURS

    @property
    def pollable(self) -> bool:
        return self.enabled and bool(self.feed_url)

    @property
    def failing(self) -> bool:
        return self.pollable and self.error_count > 0


def failing_too_long(source: Source, now: datetime) -> bool:
    """An enabled source whose polls have failed without a success for the warning period."""
    hours = get_settings().source_failing_warn_hours
    return bool(
        source.enabled
        and source.feed_url
        and source.failing_since is not None
        and now - source.failing_since >= timedelta(hours=hours)
    )


def source_statuses(*, session: Session, now: datetime | None = None) -> list[SourceStatus]:
    """Every source with its polling state and article counts (total, stored in the last 7 days)."""
    now = now or utcnow()
    totals = dict(
        session.exec(select(Article.source_id, func.count()).group_by(col(Article.source_id))).all()
    )
    week = dict(
        session.exec(
            select(Article.source_id, func.count())
            .where(col(Article.fetched_at) >= now - timedelta(days=7))
            .group_by(col(Article.source_id))
        ).all()
    )
    rows = []
    for s in list_sources(session=session):
        pollable = s.enabled and bool(s.feed_url)
        rows.append(
            SourceStatus(
                name=s.name,
                outlet=s.outlet,
                kind=s.kind,
                enabled=s.enabled,
                feed_url=s.feed_url,
                articles=int(totals.get(s.id or 0, 0)),
                items_this_week=int(week.get(s.id or 0, 0)),
                last_polled_at=s.last_polled_at,
                last_ok_at=s.last_ok_at,
                last_error=s.last_error,
                last_error_at=s.last_error_at,
                error_count=s.error_count,
                failing_since=s.failing_since,
                next_poll=(next_poll_at(s) or now) if pollable else None,
                failing_long=failing_too_long(s, now),
            )
        )
    return rows


def long_failing_sources(*, session: Session, now: datetime | None = None) -> list[Source]:
    """Enabled sources failing for the warning period (the console banner, the log line, the metric)."""
    now = now or utcnow()
    hours = get_settings().source_failing_warn_hours
    query = select(Source).where(
        Source.enabled,
        col(Source.feed_url).is_not(None),
        col(Source.failing_since) <= now - timedelta(hours=hours),
    )
    return list(session.exec(query.order_by(Source.name)).all())
