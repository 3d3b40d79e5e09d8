"""Claim matching: is this forwarded text a claim the fact team has already checked?

Retrieval runs over every text a verdict is known by (claim, summary, circulated messages): BM25 and
dense cosine, each aggregated per verdict. No single score separates "known claim" from "new claim"
(a forward shares many words with unrelated verdicts), so a small logistic regression, trained on the
dev fact-checks by `kabashoax claims calibrate`, turns several signals into the probability that a
candidate is the right verdict: both scores, their margins to the runner-up, both ranks, and the
overlap of names, numbers and links. Exact and near-exact forwards are answered before any model runs.

The per-process index is a cache of the database: each call compares a cheap watermark and pulls in
what another process published, so a verdict published in the console is matched by the bot at once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from knowledge_base import embeddings, near_duplicate
from knowledge_base.lexical import LexicalIndex
from knowledge_base.models import Verdict, VerdictText, utcnow, verdict_servable
from knowledge_base.normalize import normalize, tokens
from knowledge_base.settings import PACKAGE_DIR, get_settings
from knowledge_base.vector_index import VectorIndex

log = logging.getLogger(__name__)

MODEL_FILE = PACKAGE_DIR / "data" / "match_model.json"
FEATURES = (
    "lex_rel",  # BM25 score / best BM25 score of this query
    "lex_margin",  # (BM25 score - best other verdict's) / best
    "lex_log",  # log(1 + BM25 score)
    "lex_rank",  # log(1 + rank by BM25)
    "dense",  # cosine
    "dense_margin",  # cosine - best other verdict's cosine
    "dense_rank",  # log(1 + rank by cosine)
    "key_overlap",  # log(1 + names/numbers/links shared with the verdict's texts)
    "key_share",  # shared / the verdict's names/numbers/links
    "query_words",  # log(1 + words in the query)
    "text_cover",  # share of a verdict text's terms found in the query (best text)
    "query_cover",  # share of the query's terms found in one verdict text (best text)
)
# Candidates taken from each retriever before the model ranks their union.
CANDIDATES_PER_RETRIEVER = 10
# Candidates returned (for suggestions and the console).
TOP_CANDIDATES = 5

Decision = Literal["auto", "suggest", "none"]


@dataclass
class VerdictCandidate:
    verdict_id: int
    claim: str
    rating: str
    summary: str
    url: str | None
    published_at: datetime | None
    score: float

    @classmethod
    def from_verdict(cls, v: Verdict, score: float = 0.0) -> VerdictCandidate:
        """A verdict row as a candidate, e.g. one a citizen picked by id (then it has no match score)."""
        if v.id is None:
            raise ValueError("an unsaved verdict cannot be a candidate")
        return cls(v.id, v.claim, v.rating, v.summary, v.url, v.published_at, score)


@dataclass
class MatchResult:
    query: str
    decision: Decision
    verdict: VerdictCandidate | None
    candidates: list[VerdictCandidate]
    via: str = "model"  # "duplicate" when an exact/near-exact forward matched before any model ran

    def to_json(self) -> dict[str, object]:
        """The `claims match --json` shape: verdict only when confident enough to answer automatically."""

        def brief(c: VerdictCandidate) -> dict[str, object]:
            return {
                "id": c.verdict_id,
                "claim": c.claim,
                "rating": c.rating,
                "url": c.url,
                "score": round(c.score, 4),
            }

        return {
            "query": self.query,
            "verdict": brief(self.verdict) if self.decision == "auto" and self.verdict else None,
            "decision": self.decision,
            "via": self.via,
            "candidates": [brief(c) for c in self.candidates],
        }


# --------------------------------------------------------------------------- the learned model


@dataclass(frozen=True)
class MatchModel:
    """Standardised logistic regression over FEATURES, as written by calibration."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    auto_threshold: float
    suggest_threshold: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchModel:
        if list(data["features"]) != list(FEATURES):
            raise ValueError("match model was trained on other features: run `kabashoax claims calibrate`")
        return cls(
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            auto_threshold=float(data["auto_threshold"]),
            suggest_threshold=float(data["suggest_threshold"]),
        )


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> MatchModel:
    """The shipped coefficients (`knowledge_base/data/match_model.json`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(f"{path} is missing: run `kabashoax claims calibrate`") from None
    if data.get("embedding_model") != embeddings.model_name():
        log.warning(
            "match model was calibrated with %s, running %s: recalibrate before trusting auto-answers",
            data.get("embedding_model"),
            embeddings.model_name(),
        )
    return MatchModel.from_json(data)


# --------------------------------------------------------------------------- the index of verdict texts


@dataclass
class _Text:
    verdict_id: int
    text: str
    text_hash: str
    simhash: int
    keys: frozenset[str]
    terms: frozenset[str]


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
    by_hash: dict[str, list[int]] = field(default_factory=dict)  # exact hash -> text ids
    sim_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sims: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    lexical: LexicalIndex = field(default_factory=lambda: LexicalIndex("verdicts"))
    dense: VectorIndex | None = None
    text_mark: tuple[object, ...] = ()
    meta_mark: tuple[object, ...] = ()
    lock: threading.RLock = field(default_factory=threading.RLock)

    def sync_texts(self, session: Session) -> None:
        """Pull added, changed and deleted texts and verdict states (no model involved)."""
        mark = tuple(
            session.exec(
                select(
                    sa.func.count(VerdictText.id),
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
                rows = session.exec(
                    select(VerdictText).where(col(VerdictText.id).in_(fresh[start : start + 500]))
                )
                for row in rows.all():
                    self.texts[row.id or 0] = _Text(
                        row.verdict_id,
                        row.text,
                        row.text_hash,
                        row.simhash or near_duplicate.simhash(row.text),
                        frozenset(near_duplicate.key_tokens(row.text)),
                        frozenset(tokens(row.text)),
                    )
            if fresh:
                self.lexical.add(fresh, [self.texts[i].text for i in fresh])
            self.lexical.refresh()
            self._rebuild_lookups()
            self.text_mark = mark
        mark = tuple(
            session.exec(
                select(sa.func.count(Verdict.id), sa.func.max(Verdict.id), sa.func.max(Verdict.updated_at))
            ).one()
        )
        if mark != self.meta_mark:
            rows = session.exec(select(Verdict.id, Verdict.status, Verdict.expires_at)).all()
            self.meta = {vid: _Meta(status, expires) for vid, status, expires in rows}
            self.meta_mark = mark

    def _rebuild_lookups(self) -> None:
        keys: dict[int, set[str]] = {}
        self.terms, self.by_hash = {}, {}
        for text_id, t in self.texts.items():
            keys.setdefault(t.verdict_id, set()).update(t.keys)
            self.terms.setdefault(t.verdict_id, []).append(t.terms)
            self.by_hash.setdefault(t.text_hash, []).append(text_id)
        self.keys = {v: frozenset(k) for v, k in keys.items()}
        self.sim_ids = np.fromiter(self.texts, dtype=np.int64, count=len(self.texts))
        self.sims = np.array([self.texts[int(i)].simhash for i in self.sim_ids], dtype=np.int64).view(
            np.uint64
        )

    def sync_vectors(self, session: Session) -> None:
        """Give every text a vector: its stored blob, else embedded now and stored for other processes."""
        model = embeddings.get_model()
        dim = int(model.get_embedding_dimension() or 0)
        if self.dense is None:
            self.dense = VectorIndex("verdicts", model=embeddings.model_name(), dim=dim)
        missing = sorted(set(self.texts) - self.dense.ids())
        if not missing:
            return
        blobs = dict(
            session.exec(
                select(VerdictText.id, VerdictText.embedding).where(col(VerdictText.id).in_(missing))
            ).all()
        )
        have = [i for i in missing if blobs.get(i) and len(blobs[i] or b"") == 4 * dim]
        if have:
            self.dense.add(have, np.stack([embeddings.from_blob(blobs[i] or b"") for i in have]))
        todo = [i for i in missing if i not in set(have)]
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

    def servable(self, verdict_id: int, now: datetime) -> bool:
        meta = self.meta.get(verdict_id)
        return meta is not None and verdict_servable(meta.status, meta.expires_at, now)


_corpora: dict[str, VerdictCorpus] = {}
_corpora_lock = threading.Lock()


def corpus_for(session: Session) -> VerdictCorpus:
    """The process's corpus for the database this session talks to."""
    bind = session.get_bind()
    url = getattr(bind, "engine", bind).url.render_as_string(hide_password=True)
    with _corpora_lock:
        return _corpora.setdefault(url, VerdictCorpus())


def release(session: Session) -> None:
    """Forget the corpus of this session's database (a throw-away database is about to go)."""
    bind = session.get_bind()
    url = getattr(bind, "engine", bind).url.render_as_string(hide_password=True)
    with _corpora_lock:
        _corpora.pop(url, None)


# --------------------------------------------------------------------------- matching


@dataclass
class Scored:
    """A candidate verdict with its features and the model's probability that it is the right one."""

    verdict_id: int
    features: np.ndarray
    probability: float = 0.0


def score_candidates(
    corpus: VerdictCorpus,
    query: str,
    query_vector: np.ndarray,
    *,
    allowed: set[int],
    model: MatchModel | None,
) -> list[Scored]:
    """Rank verdicts in `allowed` for the query (best first); features only when `model` is None."""
    lex: dict[int, float] = {}
    for text_id, score in corpus.lexical.search(query, len(corpus.lexical)):
        vid = corpus.texts[text_id].verdict_id if text_id in corpus.texts else -1
        if vid in allowed and score > lex.get(vid, 0.0):
            lex[vid] = score
    dense: dict[int, float] = {}
    assert corpus.dense is not None
    for text_id, score in corpus.dense.search(query_vector, len(corpus.dense))[0]:
        vid = corpus.texts[text_id].verdict_id if text_id in corpus.texts else -1
        if vid in allowed and score > dense.get(vid, -1.0):
            dense[vid] = score
    if not dense:
        return []
    lex_order = sorted(lex, key=lambda v: -lex[v])
    dense_order = sorted(dense, key=lambda v: -dense[v])
    lex_rank = {v: r for r, v in enumerate(lex_order)}
    dense_rank = {v: r for r, v in enumerate(dense_order)}
    chosen = list(
        dict.fromkeys(lex_order[:CANDIDATES_PER_RETRIEVER] + dense_order[:CANDIDATES_PER_RETRIEVER])
    )
    lex_top = [lex[v] for v in lex_order[:2]] + [0.0, 0.0]
    dense_top = [dense[v] for v in dense_order[:2]] + [0.0, 0.0]
    lmax = max(lex_top[0], 1e-9)
    qkeys = near_duplicate.key_tokens(query)
    qwords = math.log1p(near_duplicate.word_count(query))
    qterms = set(tokens(query))
    keys_of = {v: corpus.keys.get(v, frozenset()) for v in chosen}
    scored = []
    for v in chosen:
        lv, dv = lex.get(v, 0.0), dense.get(v, 0.0)
        lother = lex_top[1] if lex_rank.get(v) == 0 else lex_top[0]
        dother = dense_top[1] if dense_rank.get(v) == 0 else dense_top[0]
        shared = len(qkeys & keys_of[v])
        texts = corpus.terms.get(v) or [frozenset()]
        text_cover = max(len(t & qterms) / max(1, len(t)) for t in texts)
        query_cover = max(len(t & qterms) / max(1, len(qterms)) for t in texts)
        x = np.array(
            [
                lv / lmax,
                (lv - lother) / lmax,
                math.log1p(lv),
                math.log1p(lex_rank.get(v, len(lex_order))),
                dv,
                dv - dother,
                math.log1p(dense_rank.get(v, len(dense_order))),
                math.log1p(shared),
                shared / max(1, len(keys_of[v])),
                qwords,
                text_cover,
                query_cover,
            ]
        )
        scored.append(Scored(v, x))
    if model is not None:
        probabilities = model.probability(np.stack([s.features for s in scored]))
        for s, p in zip(scored, probabilities, strict=True):
            s.probability = float(p)
        scored.sort(key=lambda s: -s.probability)
    return scored


def decide(probability: float, words: int) -> Decision:
    """Auto-answer only a confident match of a long enough text; a few words never auto-answer."""
    settings = get_settings()
    if probability >= settings.match_auto_threshold and words >= settings.match_min_words:
        return "auto"
    if probability >= settings.match_suggest_threshold:
        return "suggest"
    return "none"


def _candidates(session: Session, scored: list[tuple[int, float]]) -> list[VerdictCandidate]:
    """Fresh verdict rows for the chosen ids (another process may have withdrawn one a moment ago)."""
    now = utcnow()
    rows = {v.id: v for v in session.exec(select(Verdict).where(col(Verdict.id).in_([v for v, _ in scored])))}
    out = []
    for vid, score in scored:
        v = rows.get(vid)
        if v is None or not v.is_servable(now):
            continue
        out.append(VerdictCandidate(vid, v.claim, v.rating, v.summary, v.url, v.published_at, score))
    return out


def find_duplicate(corpus: VerdictCorpus, text: str, allowed: set[int]) -> int | None:
    """The verdict whose text this is an exact or near-exact forward of, using hashes only.

    Vectorised over the whole corpus (≈1 ms at 10k texts); `near_duplicate.similar` confirms the few
    texts whose simhash is close.
    """
    for text_id in corpus.by_hash.get(near_duplicate.text_hash(text), []):
        if corpus.texts[text_id].verdict_id in allowed:
            return corpus.texts[text_id].verdict_id
    if near_duplicate.word_count(text) < near_duplicate.MIN_SIMHASH_WORDS or not len(corpus.sims):
        return None
    query = np.array([near_duplicate.simhash(text)], dtype=np.int64).view(np.uint64)
    distances = np.bitwise_count(corpus.sims ^ query)
    close = np.flatnonzero(distances <= near_duplicate.MAX_DISTANCE)
    for i in close[np.argsort(distances[close], kind="stable")]:
        t = corpus.texts[int(corpus.sim_ids[i])]
        if t.verdict_id in allowed and near_duplicate.similar(text, t.text):
            return t.verdict_id
    return None


def match_claim(
    text: str,
    *,
    session: Session,
    exclude: frozenset[int] = frozenset(),
    query_vector: np.ndarray | None = None,
) -> MatchResult:
    """Match a citizen's text against published, unexpired verdicts.

    `exclude` hides verdicts (calibration simulates new claims with it); `query_vector` lets a batch
    embed its queries at once.
    """
    query = " ".join((text or "").split())
    words = near_duplicate.word_count(query)
    if not words:
        return MatchResult(query, "none", None, [])
    corpus = corpus_for(session)
    with corpus.lock:
        corpus.sync_texts(session)
        now = utcnow()
        allowed = {v for v in corpus.meta if corpus.servable(v, now)} - exclude
        duplicate = find_duplicate(corpus, query, allowed)
        if duplicate is not None:
            found = _candidates(session, [(duplicate, 1.0)])
            if found:
                decision: Decision = "auto" if words >= get_settings().match_min_words else "suggest"
                log.info("match decision=%s verdict=%s via=duplicate words=%d", decision, duplicate, words)
                return MatchResult(query, decision, found[0], found, via="duplicate")
        if not allowed:
            return MatchResult(query, "none", None, [])
        corpus.sync_vectors(session)
        if query_vector is None:
            query_vector = embeddings.embed_queries([normalize(query)])
        scored = score_candidates(corpus, query, query_vector, allowed=allowed, model=load_model())
    found = _candidates(session, [(s.verdict_id, s.probability) for s in scored[:TOP_CANDIDATES]])
    if not found:
        return MatchResult(query, "none", None, [])
    decision = decide(found[0].score, words)
    log.info(
        "match decision=%s verdict=%s p=%.3f words=%d", decision, found[0].verdict_id, found[0].score, words
    )
    return MatchResult(query, decision, found[0] if decision != "none" else None, found)


def sync(session: Session) -> int:
    """Bring this process's verdict index up to date (embedding what lacks vectors); returns its size."""
    corpus = corpus_for(session)
    with corpus.lock:
        corpus.sync_texts(session)
        corpus.sync_vectors(session)
        return len(corpus.texts)
