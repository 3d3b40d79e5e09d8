"""Ingest trusted feeds: fetch (conditional GET, timeout, size limit), parse, de-duplicate, store passages.

Each source is handled on its own: a dead, huge or malformed feed is recorded on its Source row
(`last_error`, `error_count`, `failing_since`) with its next poll backed off, and the run goes on with
the next one. Articles are unique by canonical URL, by guid within their source and by content hash, so
re-ingesting a feed adds nothing. Given an embedder (the scheduler, `kabashoax ingest`), new passages are
embedded after the fetch and stored with their vectors; otherwise they are stored without and
`knowledge_base.search.sync_passages` embeds them afterwards.
"""

from __future__ import annotations

import calendar
import io
import logging
import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
import httpx
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from knowledge_base import progress
from knowledge_base.metrics import FEED_POLLS
from knowledge_base.models import Article, Passage, Source, utcnow
from knowledge_base.settings import get_settings
from knowledge_base.sources import (
    SAMPLES_DIR,
    SAMPLES_FILE,
    due_sources,
    failing_too_long,
    load_specs,
    pollable_sources,
    schedule_next,
    sync_sources,
)
from knowledge_base.text import chunk_text, content_hash, html_to_text

log = logging.getLogger(__name__)

USER_AGENT = "Kabashoax/0.1 (trusted-feed reader of a city hoax-checking service)"
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga"}
)
_HTML_START = re.compile(
    rb"^(\xef\xbb\xbf)?\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)", re.IGNORECASE | re.DOTALL
)
_MAX_FIELD = 1000  # Article.url / guid column width
_MAX_ERROR = 2000


class FeedError(Exception):
    """Why a feed could not be ingested; recorded on the source, shown by `kabashoax sources list`."""


class PollInterrupted(Exception):
    """Raised by an embedder to abandon the run (shutdown): nothing is recorded, the feed stays due."""


@dataclass
class FetchResult:
    not_modified: bool
    content: bytes = b""
    url: str = ""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class FeedItem:
    guid: str
    url: str
    title: str
    text: str
    author: str | None
    published_at: datetime | None


@dataclass
class IngestReport:
    """What one source's ingest did; `status` is ok | not_modified | warning | error."""

    source: str
    status: str
    new_articles: int = 0
    new_passages: int = 0
    updated: int = 0
    duplicates: int = 0
    skipped: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "error"


# --------------------------------------------------------------------------- fetching


def new_client() -> httpx.Client:
    settings = get_settings()
    return httpx.Client(
        timeout=httpx.Timeout(settings.feed_timeout_s),
        follow_redirects=True,
        max_redirects=5,
        headers={"User-Agent": USER_AGENT, "Accept": "application/rss+xml, application/atom+xml, */*;q=0.5"},
    )


def fetch_feed(
    url: str,
    *,
    client: httpx.Client,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int | None = None,
    timeout_s: float | None = None,
) -> FetchResult:
    """GET a feed with the stored validators; stops reading past `max_bytes` or the overall deadline."""
    settings = get_settings()
    max_bytes = max_bytes or settings.feed_max_bytes
    timeout_s = timeout_s or settings.feed_timeout_s
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + 2 * timeout_s  # per-read timeouts alone let a trickling server go on
    try:
        with client.stream("GET", url, headers=headers, timeout=timeout_s) as response:
            if response.status_code == 304:
                return FetchResult(not_modified=True, url=str(response.url))
            if response.status_code >= 400:
                raise FeedError(f"HTTP {response.status_code} from {response.url}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(f"feed too large: {declared} bytes declared, limit {max_bytes}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise FeedError(f"feed too large: more than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FeedError(f"timed out: feed still downloading after {2 * timeout_s:g} s")
            return FetchResult(
                not_modified=False,
                content=bytes(body),
                url=str(response.url),
                content_type=response.headers.get("Content-Type"),
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )
    except httpx.TimeoutException as exc:
        raise FeedError(f"timed out after {timeout_s:g} s ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise FeedError(f"network error: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- parsing


def canonical_url(url: str, base: str | None = None) -> str | None:
    """The URL an article is known by: absolute http(s), lower-case host, no fragment or tracking params."""
    url = (url or "").strip()
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.hostname.lower()
    if port and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not (k.lower().startswith("utm_") or k.lower() in _TRACKING_PARAMS)
    ]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def _entry_datetime(entry: Any, now: datetime) -> datetime | None:
    """Publication time in UTC; a date far in the future is a feed bug, not news from tomorrow."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        when = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, TypeError):
        return None
    return None if when > now + timedelta(days=1) else when


def _entry_item(entry: Any, base_url: str | None, now: datetime) -> FeedItem | None:
    """A storable item, or None when the entry has no usable link or no text at all."""
    link = (entry.get("link") or (entry.get("id") if entry.get("guidislink") else None) or "").strip()
    url = canonical_url(link, base_url) if link else None  # no link would resolve to the feed's own URL
    if url is None or len(url) > _MAX_FIELD:
        return None
    title = " ".join(html_to_text(entry.get("title", "")).split())
    bodies = [c.get("value", "") for c in entry.get("content", [])] + [entry.get("summary", "")]
    text = max((html_to_text(b) for b in bodies), key=len, default="")
    if not (title or text):
        return None
    guid = (entry.get("id") or url).strip()
    if len(guid) > _MAX_FIELD:
        guid = "sha256:" + content_hash(guid)
    author = " ".join(html_to_text(entry.get("author", "")).split())[:300] or None
    return FeedItem(guid, url, title or text[:200], text, author, _entry_datetime(entry, now))


def parse_feed(
    content: bytes, *, base_url: str | None = None, content_type: str | None = None
) -> tuple[list[FeedItem], str | None, int]:
    """Items of an RSS/Atom/RDF document, a warning when it was malformed but readable, and the skip count.

    A malformed feed whose items feedparser's lenient parser recovers (a wrong declared encoding, an
    unescaped `&`, a truncated tail) is kept, with the problem as a warning. Raises FeedError when the
    content is not a feed at all (HTML page, empty body, unreadable XML, nothing recoverable).
    """
    if not content.strip():
        raise FeedError("empty response: no feed content")
    headers = {"content-location": base_url or "", "content-type": content_type or "application/xml"}
    # A BytesIO, never the bytes: feedparser would open a body that happens to name a local file.
    parsed = feedparser.parse(io.BytesIO(content), response_headers=headers)
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.entries:
        if _HTML_START.match(content[:2000]):
            raise FeedError("not a feed: the URL returned an HTML page (look for the site's RSS link)")
        if problem is not None:
            raise FeedError(f"not a readable feed: {type(problem).__name__}: {problem}")
        if not parsed.get("version"):
            raise FeedError("not a feed: no RSS, Atom or RDF document found (an HTML page?)")
    now = utcnow()
    items = [_entry_item(e, base_url, now) for e in parsed.entries]
    kept = [i for i in items if i is not None]
    warning = None
    if problem is not None:
        if not kept:
            raise FeedError(f"not a readable feed: {type(problem).__name__}: {problem}")
        warning = f"malformed feed, {len(kept)} items recovered: {type(problem).__name__}: {problem}"
    return kept, warning, len(items) - len(kept)


# --------------------------------------------------------------------------- storing


def searchable_text(item: FeedItem) -> str:
    """Title then body: feed bodies are often a teaser that never names the claim the title states."""
    if not item.text:
        return item.title
    if item.text.casefold().startswith(item.title.casefold()):
        return item.text
    return f"{item.title}\n{item.text}"


@dataclass
class _Planned:
    """An item that will be written: new, or a changed version of an article of this source."""

    item: FeedItem
    existing: Article | None
    digest: str
    passages: list[str]


def _plan(source: Source, items: list[FeedItem], *, session: Session) -> tuple[list[_Planned], int]:
    """Which items to write (reads only) and how many are duplicates.

    The canonical URL identifies an article; an item whose URL or content hash is already stored
    (from any source) is a duplicate. An item reusing a guid of another URL of this source (a feed
    that numbers its items) is a different article and gets its URL as guid: text is only ever
    replaced by the item at the same URL.
    """
    settings = get_settings()
    hashes = {id(i): content_hash(i.title, i.text) for i in items}
    guids, urls = [i.guid for i in items], [i.url for i in items]
    own = session.exec(
        select(Article).where(
            Article.source_id == source.id, col(Article.guid).in_(guids) | col(Article.url).in_(urls)
        )
    ).all()
    known_guids, by_url = {a.guid for a in own}, {a.url: a for a in own}
    seen_urls = set(session.exec(select(Article.url).where(col(Article.url).in_(urls))).all())
    seen_hashes = set(
        session.exec(
            select(Article.content_hash).where(col(Article.content_hash).in_(list(hashes.values())))
        ).all()
    )
    planned: list[_Planned] = []
    duplicates = 0
    handled: set[str] = set()  # the first item at a URL wins: a repeat must not flip the text each run
    for item in items:
        digest = hashes[id(item)]
        if item.url in handled:
            duplicates += 1
            continue
        handled.add(item.url)
        existing = by_url.get(item.url)
        if existing is None and item.guid in known_guids:
            item.guid = item.url
        if existing is not None and existing.content_hash == digest:
            duplicates += 1
            continue
        if existing is None and (item.url in seen_urls or digest in seen_hashes):
            duplicates += 1
            continue
        passages = chunk_text(searchable_text(item), settings.passage_words, settings.passage_overlap_words)
        planned.append(_Planned(item, existing, digest, passages))
        known_guids.add(item.guid)
        seen_urls.add(item.url)
        seen_hashes.add(digest)
    return planned, duplicates


def pending_passages(source: Source, items: list[FeedItem], *, session: Session) -> list[str]:
    """The passage texts `store_items` would write now (reads only), so they can be embedded first."""
    planned, _ = _plan(source, items, session=session)
    return [text for p in planned for text in p.passages]


def store_items(
    source: Source,
    items: list[FeedItem],
    *,
    session: Session,
    vectors: Mapping[str, bytes] | None = None,
) -> IngestReport:
    """Insert unseen items; re-chunk this source's articles whose text changed (corrections, updates).

    `vectors` (passage text -> embedding blob, computed beforehand outside any transaction) are stored
    with the passages, so no process ever has to embed them while answering a citizen.
    """
    report = IngestReport(source=source.name, status="ok")
    planned, report.duplicates = _plan(source, items, session=session)
    for p in planned:
        try:
            with session.begin_nested():  # a row another process stored meanwhile is a duplicate, not a crash
                _write_article(p, source, vectors or {}, session=session)
        except IntegrityError:
            report.duplicates += 1
            continue
        if p.existing is None:
            report.new_articles += 1
        else:
            report.updated += 1
        report.new_passages += len(p.passages)
    return report


def _write_article(
    planned: _Planned, source: Source, vectors: Mapping[str, bytes], *, session: Session
) -> Article:
    """Insert a new article, or replace the text and passages of an existing one (its id and URL stay).

    Replacement passages are inserted before the old ones are deleted, so they get fresh ids even on
    SQLite (which reuses the highest deleted rowid): every search process then sees them as new.
    """
    existing, item = planned.existing, planned.item
    old = (
        []
        if existing is None
        else session.exec(select(Passage).where(Passage.article_id == existing.id)).all()
    )
    assert source.id is not None, "the source is stored before its articles"
    article = existing or Article(
        source_id=source.id, guid=item.guid, url=item.url, title="", content_hash=""
    )
    article.title, article.text, article.author = item.title, item.text, item.author
    article.published_at, article.content_hash = item.published_at, planned.digest
    session.add(article)
    session.flush()
    assert article.id is not None
    session.add_all(
        Passage(article_id=article.id, position=n, text=text, embedding=vectors.get(text))
        for n, text in enumerate(planned.passages)
    )
    session.flush()
    for passage in old:
        session.delete(passage)  # search drops their vectors on its next sync
    session.flush()
    return article


def record_error(source: Source, message: str, now: datetime, *, session: Session) -> IngestReport:
    """A failed poll: the error, one more failure in a row, and the next poll backed off."""
    source.last_polled_at = source.last_error_at = now
    source.last_error = message[:_MAX_ERROR]
    source.error_count += 1
    source.failing_since = source.failing_since or now
    source.next_poll_at = schedule_next(source, now)
    session.add(source)
    session.flush()
    FEED_POLLS.labels(source.name, "error").inc()
    log.warning("feed %s failed (%d in a row): %s", source.name, source.error_count, message)
    if failing_too_long(source, now):
        hours = (now - source.failing_since).total_seconds() / 3600
        log.error(
            "source %s has been failing for %.0f h (since %s); next try %s",
            source.name,
            hours,
            source.failing_since.isoformat(timespec="minutes"),
            source.next_poll_at.isoformat(timespec="minutes"),
        )
    return IngestReport(source=source.name, status="error", error=message)


def record_success(
    source: Source, report: IngestReport, now: datetime, *, session: Session, fetched: FetchResult | None
) -> IngestReport:
    """A poll that read the feed (a recovered malformed one included): errors cleared, next poll scheduled."""
    source.last_polled_at = source.last_ok_at = now
    source.last_error = report.error[:_MAX_ERROR] if report.error else None
    source.error_count, source.failing_since = 0, None
    if fetched is not None and not fetched.not_modified:
        source.etag, source.last_modified = fetched.etag, fetched.last_modified
    source.next_poll_at = schedule_next(source, now)
    session.add(source)
    session.flush()
    FEED_POLLS.labels(source.name, report.status).inc()
    if report.status != "not_modified":
        log.info(
            "feed %s: %d new articles, %d updated, %d passages, %d duplicates, %d skipped",
            source.name,
            report.new_articles,
            report.updated,
            report.new_passages,
            report.duplicates,
            report.skipped,
        )
    return report


def fetch_source(source: Source, *, client: httpx.Client | None = None) -> FetchResult:
    """GET a source's feed with its stored validators (raises FeedError)."""
    if not source.feed_url:
        raise FeedError("source has no feed URL")
    with nullcontext(client) if client else new_client() as http:
        return fetch_feed(source.feed_url, client=http, etag=source.etag, last_modified=source.last_modified)


def ingest_source(
    source: Source,
    *,
    session: Session,
    client: httpx.Client | None = None,
    content: bytes | None = None,
    fetched: FetchResult | None = None,
    vectors: Mapping[str, bytes] | None = None,
) -> IngestReport:
    """Fetch (unless `content`, e.g. a saved file, or an already `fetched` response is given), parse and
    store one source's feed, with `vectors` for passages embedded beforehand.

    Never raises for a bad feed: the failure is recorded on the source and returned in the report.
    """
    now = utcnow()
    try:
        if content is None:
            fetched = fetched or fetch_source(source, client=client)
            if fetched.not_modified:
                return record_success(
                    source, IngestReport(source.name, "not_modified"), now, session=session, fetched=fetched
                )
            content = fetched.content
        items, warning, skipped = parse_feed(
            content,
            base_url=fetched.url if fetched else source.feed_url or source.homepage,
            content_type=fetched.content_type if fetched else None,
        )
        with session.begin_nested():
            report = store_items(source, items, session=session, vectors=vectors)
    except FeedError as exc:
        return record_error(source, str(exc), now, session=session)
    except SQLAlchemyError as exc:  # the source's rows were rolled back; the others go on
        log.exception("storing feed %s failed", source.name)
        return record_error(source, f"database error: {type(exc).__name__}", now, session=session)
    report.skipped = skipped
    if warning:
        report.status, report.error = "warning", warning
    return record_success(source, report, now, session=session, fetched=fetched)


Embedder = Callable[[list[str]], Mapping[str, bytes]]


def ingest_sources(
    sources: list[Source],
    *,
    session: Session,
    client: httpx.Client | None = None,
    embed: Embedder | None = None,
) -> list[IngestReport]:
    """Ingest each source in turn, committing after each so one failure never costs another's articles.

    With `embed`, each feed's new passages are embedded after its fetch and before its write, with no
    transaction open meanwhile (SQLite would otherwise hold its write lock through the embedding).
    """
    reports: list[IngestReport] = []
    with nullcontext(client) if client else new_client() as http, progress.task("feeds", len(sources)):
        for source in sources:
            try:
                report = _ingest_one(source, session=session, client=http, embed=embed)
            except PollInterrupted:
                break
            except Exception as exc:  # a bug met by one feed must not cost the other sources their turn
                log.exception("ingesting %s failed unexpectedly", source.name)
                report = record_error(
                    source, f"internal error: {type(exc).__name__}: {exc}", utcnow(), session=session
                )
            reports.append(report)
            session.commit()
            progress.advance()
    return reports


def _ingest_one(
    source: Source, *, session: Session, client: httpx.Client, embed: Embedder | None
) -> IngestReport:
    """One source; its writes happen in a savepoint, undone alone if something unexpected fails."""
    if embed is None:
        with session.begin_nested():
            return ingest_source(source, session=session, client=client)
    session.commit()  # no transaction stays open across the network or the model
    try:
        fetched = fetch_source(source, client=client)
        vectors: Mapping[str, bytes] = {}
        if not fetched.not_modified:
            items, _, _ = parse_feed(fetched.content, base_url=fetched.url, content_type=fetched.content_type)
            texts = pending_passages(source, items, session=session)
            session.commit()
            vectors = embed(texts) if texts else {}
    except FeedError as exc:
        return record_error(source, str(exc), utcnow(), session=session)
    with session.begin_nested():
        return ingest_source(source, session=session, fetched=fetched, vectors=vectors)


def ingest_due(
    *,
    session: Session,
    client: httpx.Client | None = None,
    force: bool = False,
    now: datetime | None = None,
    embed: Embedder | None = None,
) -> list[IngestReport]:
    """Poll every due source (with `force`, every enabled source that has a feed URL)."""
    sources = pollable_sources(session=session) if force else due_sources(session=session, now=now)
    return ingest_sources(sources, session=session, client=client, embed=embed)


def read_feed_file(path: Path) -> bytes:
    """A saved feed, refused when larger than the feed size limit (it would be refused over HTTP too)."""
    limit = get_settings().feed_max_bytes
    with path.open("rb") as handle:
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise FeedError(f"feed too large: more than {limit} bytes")
    return content


def ingest_file(path: Path, source: Source, *, session: Session) -> IngestReport:
    """Ingest a saved feed file as if `source` had served it (validators untouched)."""
    try:
        content = read_feed_file(path)
    except FeedError as exc:
        return record_error(source, str(exc), utcnow(), session=session)
    return ingest_source(source, session=session, content=content)


def ingest_samples(*, session: Session) -> list[IngestReport]:
    """Register and load the bundled sample feeds (sources `sample-*`), offline; idempotent."""
    specs = load_specs(SAMPLES_FILE)
    sync_sources(specs, session=session)
    reports = []
    for spec in specs:
        source = session.exec(select(Source).where(Source.name == spec.name)).one()
        reports.append(ingest_file(SAMPLES_DIR / str(spec.file), source, session=session))
        session.commit()
    return reports
