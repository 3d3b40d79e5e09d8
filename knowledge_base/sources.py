"""The registry of trusted sources: `sources.yaml` synced into the Source table, operator changes, due-ness.

The yaml file seeds and updates the registry; the database is the truth at run time, so a source the
operator disabled stays disabled when the file is synced again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, col, select

from knowledge_base.models import Source, SourceKind, utcnow
from knowledge_base.settings import PACKAGE_DIR, get_settings

log = logging.getLogger(__name__)

SAMPLES_DIR = PACKAGE_DIR / "data" / "sample_feeds"
SAMPLES_FILE = SAMPLES_DIR / "samples.yaml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")
# A failing source waits interval * 2**errors (capped), so a dead feed is not hammered every cycle.
MAX_BACKOFF_EXPONENT = 4


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
        if source.feed_url != spec.feed_url:  # validators of the old URL mean nothing for the new one
            source.etag = source.last_modified = None
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
    source.enabled = enabled
    session.add(source)
    session.flush()
    return source


def next_poll_at(source: Source) -> datetime | None:
    """When the source is due again (None: now); failures back off exponentially."""
    if source.last_polled_at is None:
        return None
    factor = 2 ** min(source.error_count, MAX_BACKOFF_EXPONENT)
    return source.last_polled_at + timedelta(minutes=source.poll_interval_minutes * factor)


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
