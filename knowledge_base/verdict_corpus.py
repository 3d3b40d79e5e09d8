"""The per-process index of verdict texts (claims, summaries, circulated messages) for claim matching.

It is a cache of the database: each call compares a cheap watermark and pulls in what another process
published, so a verdict published in the console is matched by the bot at once. Three layers, each
built only when a caller needs it: hashes and simhashes (exact and near-exact forwards, no model),
terms and BM25 (tokenizing is the slow part of a cold start), and vectors (the embedding model).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from knowledge_base import embeddings, near_duplicate
from knowledge_base.lexical import LexicalIndex
from knowledge_base.lru import LruCache
from knowledge_base.models import Verdict, VerdictText, verdict_servable
from knowledge_base.normalize import normalize, tokens
from knowledge_base.settings import get_settings
from knowledge_base.vector_index import VectorIndex

log = logging.getLogger(__name__)

# A text states the claim (the claim itself, a message as it circulated) unless it is the summary,
# which is the fact team's explanation.
SUMMARY = "summary"
CLAIM = "claim"


@dataclass
class _Text:
    verdict_id: int
    kind: str  # claim | summary | message
    text: str
    text_hash: str
    simhash: int
    keys: frozenset[str]
    terms: frozenset[str] | None = None  # filled by `sync_terms`


@dataclass
class _Meta:
    status: str
    expires_at: datetime | None


@dataclass
class VerdictCorpus:
    """Verdict texts of one database, with BM25 and FAISS indexes kept in step with the rows."""

    texts: dict[int, _Text] = field(default_factory=dict)
    meta: dict[int, _Meta] = field(default_factory=dict)
    keys: dict[int, frozenset[str]] = field(default_factory=dict)  # per verdict, over all its texts
    terms: dict[int, list[frozenset[str]]] = field(default_factory=dict)  # per verdict, one set per text
    statements: dict[int, list[frozenset[str]]] = field(default_factory=dict)  # the same, summaries left out
    # Per verdict, per claim-stating text: its adjacent term pairs ("tebak kata" is not "tebak nama").
    pairs: dict[int, list[frozenset[tuple[str, str]]]] = field(default_factory=dict)
    # Per verdict, per claim text: its names (words the verdicts mostly write with a capital).
    names: dict[int, list[frozenset[str]]] = field(default_factory=dict)
    by_hash: dict[str, list[int]] = field(default_factory=dict)  # exact hash -> text ids
    sim_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sims: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    lexical: LexicalIndex = field(default_factory=lambda: LexicalIndex("verdicts"))
    dense: VectorIndex | None = None
    text_mark: tuple[object, ...] = ()
    meta_mark: tuple[object, ...] = ()
    terms_stale: bool = False
    _servable_mark: tuple[object, ...] = ()
    _published: set[int] = field(default_factory=set)
    _expiring: list[int] = field(default_factory=list)
    # Results of the matcher by canonical text hash, each with the `mark` it was computed at.
    results: LruCache[str, tuple[tuple[object, ...], Any]] = field(
        default_factory=lambda: LruCache(lambda: get_settings().query_cache_size)
    )
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def mark(self) -> tuple[object, ...]:
        """Changes whenever a text or a verdict's state changed: keys caches of match results."""
        return (self.text_mark, self.meta_mark)

    def sync_texts(self, session: Session) -> None:
        """Pull added, changed and deleted texts and verdict states: hashes only, no tokenizing."""
        mark = tuple(
            session.exec(
                select(
                    sa.func.count(col(VerdictText.id)),
                    sa.func.max(VerdictText.id),
                    sa.func.max(VerdictText.created_at),
                )
            ).one()
        )
        if mark != self.text_mark:
            rows = session.exec(select(VerdictText.id, VerdictText.verdict_id, VerdictText.text_hash)).all()
            current = {i: (verdict_id, digest) for i, verdict_id, digest in rows}
            stale = [i for i, t in self.texts.items() if current.get(i) != (t.verdict_id, t.text_hash)]
            for i in stale:
                del self.texts[i]
            self.lexical.remove(stale)
            if self.dense is not None:
                self.dense.remove(stale)
            fresh = [i for i in current if i not in self.texts]
            for start in range(0, len(fresh), 500):
                batch = session.exec(
                    select(VerdictText).where(col(VerdictText.id).in_(fresh[start : start + 500]))
                )
                for row in batch.all():
                    self.texts[row.id or 0] = _Text(
                        row.verdict_id,
                        row.kind,
                        row.text,
                        row.text_hash,
                        row.simhash or near_duplicate.simhash(row.text),
                        frozenset(near_duplicate.key_tokens(row.text)),
                    )
            self._rebuild_hashes()
            self.terms_stale = True
            self.text_mark = mark
            # Texts change with a publication or correction: re-read the verdict states too. Their own
            # mark can miss it (an `updated_at` set before another one but committed after it).
            self.meta_mark = ()
        mark = tuple(
            session.exec(
                select(
                    sa.func.count(col(Verdict.id)), sa.func.max(Verdict.id), sa.func.max(Verdict.updated_at)
                )
            ).one()
        )
        if mark != self.meta_mark:
            states = session.exec(select(Verdict.id, Verdict.status, Verdict.expires_at)).all()
            self.meta = {vid: _Meta(status, expires) for vid, status, expires in states if vid is not None}
            self.meta_mark = mark
            self._servable_mark = ()  # the states were re-read; the mark itself may be the same as before

    def _rebuild_hashes(self) -> None:
        keys: dict[int, set[str]] = {}
        self.by_hash = {}
        for text_id, t in self.texts.items():
            keys.setdefault(t.verdict_id, set()).update(t.keys)
            self.by_hash.setdefault(t.text_hash, []).append(text_id)
        self.keys = {v: frozenset(k) for v, k in keys.items()}
        self.sim_ids = np.fromiter(self.texts, dtype=np.int64, count=len(self.texts))
        self.sims = np.array([self.texts[int(i)].simhash for i in self.sim_ids], dtype=np.int64).view(
            np.uint64
        )

    def sync_terms(self) -> None:
        """Tokenize texts that arrived since the last call and bring BM25 up to date."""
        if not self.terms_stale:
            return
        fresh = [i for i, t in self.texts.items() if t.terms is None]
        for i in fresh:
            self.texts[i].terms = frozenset(tokens(self.texts[i].text))
        if fresh:
            self.lexical.add(fresh, [self.texts[i].text for i in fresh])
        self.lexical.refresh()
        self.terms, self.statements, self.pairs = {}, {}, {}
        for i, t in self.texts.items():
            terms = t.terms or frozenset()
            self.terms.setdefault(t.verdict_id, []).append(terms)
            if t.kind != SUMMARY:
                self.statements.setdefault(t.verdict_id, []).append(terms)
                self.pairs.setdefault(t.verdict_id, []).append(term_pairs(self.lexical.terms(i)))
        self._find_names()
        self.terms_stale = False

    def _find_names(self) -> None:
        """A claim's names are its words that the verdicts' texts write with a capital more often than
        not, away from the start of a sentence ("Korea", "Luhut", "BSI"; not "Tautan", "Video")."""
        capital: dict[str, int] = {}
        lower: dict[str, int] = {}
        claims: list[tuple[int, set[str]]] = []
        for t in self.texts.values():
            written_words = near_duplicate.words_with_case(t.text)
            for word, written in written_words:
                if written is not None:
                    counts = capital if written else lower
                    counts[word] = counts.get(word, 0) + 1
            if t.kind == CLAIM:
                claims.append((t.verdict_id, {w for w, _ in written_words}))
        self.names = {}
        for verdict_id, words in claims:
            names = frozenset(w for w in words if capital.get(w, 0) > lower.get(w, 0))
            self.names.setdefault(verdict_id, []).append(names)

    def sync_vectors(self, session: Session) -> None:
        """Give every text a vector: its stored blob, else embedded now and stored for other processes."""
        dim = embeddings.dimension()
        if self.dense is None:
            self.dense = VectorIndex("verdicts", model=embeddings.model_name(), dim=dim)
        missing = sorted(set(self.texts) - self.dense.ids())
        if not missing:
            return
        blobs: dict[int, bytes | None] = {}
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            rows = session.exec(
                select(VerdictText.id, VerdictText.embedding).where(col(VerdictText.id).in_(chunk))
            ).all()
            blobs.update({i: blob for i, blob in rows if i is not None})
        have = [i for i in missing if len(blobs.get(i) or b"") == 4 * dim]
        if have:
            self.dense.add(have, np.stack([embeddings.from_blob(blobs[i] or b"") for i in have]))
        todo = [i for i in missing if len(blobs.get(i) or b"") != 4 * dim]
        if todo:
            vectors = embeddings.embed_documents([normalize(self.texts[i].text) for i in todo])
            for i, vector in zip(todo, vectors, strict=True):
                session.execute(
                    sa.update(VerdictText)
                    .where(col(VerdictText.id) == i)
                    .values(embedding=embeddings.to_blob(vector))
                )
            self.dense.add(todo, vectors)
            log.info("embedded %d verdict texts", len(todo))

    def without(self, verdict_ids: set[int]) -> VerdictCorpus:
        """A read-only view as if these verdicts had never been indexed (BM25 statistics included).

        Calibration and evaluation match a circulated message against it to simulate a claim nobody
        has checked: merely hiding the verdict would leave its words' rarity in the scores.
        """
        self.sync_terms()
        gone = {i for i, t in self.texts.items() if t.verdict_id in verdict_ids}
        return replace(
            self,
            texts={i: t for i, t in self.texts.items() if i not in gone},
            lexical=self.lexical.without(gone),
            results=LruCache(lambda: 0),
            lock=threading.RLock(),
        )

    def servable_ids(self, now: datetime) -> set[int]:
        """Verdicts a citizen may be served now (`models.verdict_servable`), as a new set. Worked out
        once per change of the verdict states; only verdicts with an expiry meet the clock per call."""
        if self._servable_mark != self.meta_mark:
            self._published = {v for v, m in self.meta.items() if verdict_servable(m.status, None, now)}
            self._expiring = [v for v in self._published if self.meta[v].expires_at is not None]
            self._servable_mark = self.meta_mark
        meta = self.meta
        return self._published - {
            v for v in self._expiring if not verdict_servable(meta[v].status, meta[v].expires_at, now)
        }

    def find_duplicate(self, text: str, allowed: set[int]) -> int | None:
        """The verdict whose text this is an exact or near-exact forward of, using hashes only.

        Vectorised over the whole corpus (≈1 ms at 10k texts); `near_duplicate.similar` confirms the
        few texts whose simhash is close.
        """
        for text_id in self.by_hash.get(near_duplicate.text_hash(text), []):
            if self.texts[text_id].verdict_id in allowed:
                return self.texts[text_id].verdict_id
        if near_duplicate.word_count(text) < near_duplicate.MIN_SIMHASH_WORDS or not len(self.sims):
            return None
        query = np.array([near_duplicate.simhash(text)], dtype=np.int64).view(np.uint64)
        distances = np.bitwise_count(self.sims ^ query)
        close = np.flatnonzero(distances <= near_duplicate.MAX_DISTANCE)
        for i in close[np.argsort(distances[close], kind="stable")]:
            t = self.texts[int(self.sim_ids[i])]
            if t.verdict_id in allowed and near_duplicate.similar(text, t.text):
                return t.verdict_id
        return None


def term_pairs(terms: list[str]) -> frozenset[tuple[str, str]]:
    """Adjacent pairs of a text's terms, in order."""
    return frozenset(zip(terms, terms[1:], strict=False))


_corpora: dict[str, VerdictCorpus] = {}
_corpora_lock = threading.Lock()


def database_key(session: Session) -> str:
    """The session's database URL (password hidden): one corpus per database in a process."""
    engine = session.get_bind().engine
    return engine.url.render_as_string(hide_password=True)


def corpus_for(session: Session) -> VerdictCorpus:
    """The process's corpus for the database this session talks to."""
    with _corpora_lock:
        return _corpora.setdefault(database_key(session), VerdictCorpus())


def release(session: Session) -> None:
    """Forget the corpus of this session's database (a throw-away database is about to go)."""
    with _corpora_lock:
        _corpora.pop(database_key(session), None)
