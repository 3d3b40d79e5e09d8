"""The service's periodic jobs: the one list `kabashoax scheduler` runs.

Adding a job is one line in `default_jobs()`: `Job(name, func, every=timedelta(...))`, where `func`
is `(now: datetime, *, session: Session) -> object` (see `knowledge_base.scheduler`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from knowledge_base import progress
from knowledge_base.digests import ensure_weekly_draft
from knowledge_base.feeds import Embedder, PollInterrupted, ingest_due
from knowledge_base.metrics import saved_index_size
from knowledge_base.models import Passage
from knowledge_base.scheduler import Job, stopping
from knowledge_base.settings import get_settings

log = logging.getLogger(__name__)

EMBED_BATCH = 32  # passages per model call: a shutdown waits for at most one batch


def default_jobs(*, feeds: bool = True) -> list[Job]:
    """The jobs every scheduler process runs (`feeds=False`: no network polling, e.g. offline demos)."""
    settings = get_settings()
    jobs = [
        Job("index.sync", sync_index, every=timedelta(seconds=settings.scheduler_index_every_s)),
        # idempotent per week: checking hourly drafts Monday's digest within the hour after 08:00 WITA
        Job("digest.weekly-draft", ensure_weekly_draft, every=timedelta(hours=1)),
    ]
    if feeds:
        jobs.insert(0, Job("feeds.poll", poll_feeds, every=timedelta(seconds=settings.scheduler_feed_tick_s)))
    return jobs


def passage_embedder(stop: Callable[[], bool] = stopping) -> Embedder:
    """Embeds passage texts with the configured model, in batches, abandoning the feed on shutdown.

    A model failure is logged and the passages are stored without vectors (`index.sync` retries them):
    the feed's articles are never lost to it.
    """

    def embed(texts: list[str]) -> Mapping[str, bytes]:
        from knowledge_base.embeddings import embed_documents, model_name, to_blob

        unique = list(dict.fromkeys(texts))
        vectors: dict[str, bytes] = {}
        with progress.task("embedding passages", len(unique)):
            for start in range(0, len(unique), EMBED_BATCH):
                if stop():
                    raise PollInterrupted()
                batch = unique[start : start + EMBED_BATCH]
                try:
                    embedded = embed_documents(batch, name=model_name())
                except Exception:
                    log.exception("embedding %d passages failed; storing them without vectors", len(unique))
                    return vectors
                for text, vector in zip(batch, embedded, strict=True):
                    vectors[text] = to_blob(vector)
                progress.advance(len(batch))
        return vectors

    return embed


def poll_feeds(now: datetime, *, session: Session) -> None:
    """Poll every due source; new passages are embedded before they are stored (searchable at once)."""
    ingest_due(session=session, now=now, embed=passage_embedder())


def sync_index(now: datetime, *, session: Session) -> None:
    """Embed passages stored without vectors (e.g. `ingest --no-index`), a batch per commit, and save
    this process's copy of the index so a restarting web process loads it current.

    Skipped (without loading the model) when every passage has its vector and the saved index has
    them all."""
    if not _index_work(session):
        return
    from knowledge_base.search import get_searcher

    searcher = get_searcher(session)
    changed = 0
    while not stopping():
        done = searcher.sync(session, persist=False, embed_limit=EMBED_BATCH)
        session.commit()  # each batch's vectors are visible to every process at once
        changed += done
        if not done:
            break
    if changed:
        searcher.save()


def _index_work(session: Session) -> bool:
    """Whether some passage lacks a vector, or the saved index holds a different number of them."""
    unembedded = session.exec(select(Passage.id).where(col(Passage.embedding).is_(None)).limit(1)).first()
    if unembedded is not None:
        return True
    stored = int(session.exec(select(func.count()).select_from(Passage)).one() or 0)
    return (saved_index_size("passages") or 0) != stored
