"""Claim matching: is this forwarded text a claim the fact team has already checked?

Retrieval runs over every text a verdict is known by (claim, summary, circulated messages): BM25 and
dense cosine, each aggregated per verdict. No single score separates "known claim" from "new claim"
(a forward shares many words with unrelated verdicts), so a small logistic regression, trained on the
dev fact-checks by `kabashoax claims calibrate`, turns several signals into the probability that a
candidate is the right verdict: both scores, their margins to the runner-up, both ranks, the overlap
of names, numbers and links, and how much of the verdict's own claim the text says (IDF-weighted, so
a templated scam about another bank or another country is told apart by the one word that differs).
Calibration chooses the auto-answer and suggestion thresholds together with the coefficients.

In front of every model, `known_forward` answers exact and near-exact forwards of a verdict's texts and
verbatim repeats of a text matched before, from hashes alone.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlmodel import Session, col, select

from knowledge_base import embeddings, near_duplicate
from knowledge_base.models import Verdict, utcnow
from knowledge_base.normalize import tokens
from knowledge_base.settings import get_settings
from knowledge_base.verdict_corpus import VerdictCorpus, corpus_for, term_pairs

log = logging.getLogger(__name__)

FEATURES = (
    "lex_rel",  # BM25 score / best BM25 score of this query
    "lex_margin",  # (BM25 score - best other verdict's) / best
    "lex_log",  # log(1 + BM25 score)
    "lex_rank",  # log(1 + rank by BM25)
    "dense",  # cosine (best text)
    "dense_margin",  # cosine - best other verdict's cosine
    "dense_rank",  # log(1 + rank by cosine)
    "key_overlap",  # log(1 + names/numbers/links shared with the verdict's texts)
    "key_share",  # shared / the verdict's names/numbers/links
    "query_words",  # log(1 + words in the query)
    "text_cover",  # share of a verdict text's terms found in the query (best text)
    "query_cover",  # share of the query's terms found in one verdict text (best text)
    "claim_cover",  # IDF-weighted share of a claim-stating text's terms found in the query (best)
    "claim_dense",  # cosine to the best claim-stating text (claim, circulated message; not summary)
    "claim_pairs",  # share of a claim-stating text's adjacent term pairs found adjacent in the query
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
    cached: bool = False  # a verbatim repeat answered from this process's result cache

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
class RunnerUp:
    """Floors for the runner-up each margin is measured against, as calibrated on a full corpus.

    In a corpus of two or three verdicts the best candidate has no real competitor, so its margins
    would look like certainty; it is measured against at least a runner-up as close as most
    calibration queries had (`lex_share` of the best BM25 score, `dense` cosine).
    """

    lex_share: float = 0.0
    dense: float = 0.0


@dataclass(frozen=True)
class MatchModel:
    """Standardised logistic regression over FEATURES and its decision thresholds, as calibrated."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    auto_threshold: float
    auto_max_names_missing: float  # share of the verdict claim's names a text may leave out
    auto_min_margin: float  # probability lead over the second candidate an automatic answer needs
    suggest_threshold: float
    runner_up: RunnerUp

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def decide(self, best: Scored, second: float, words: int) -> Decision:
        """Auto-answer only a confident match of a long enough text that names what the verdict's
        claim names (a verdict about Korea is no answer to a message about China) and clearly beats
        the second candidate (two verdicts of one claim are offered, not chosen between); a few words
        never auto-answer."""
        probability = best.probability
        if (
            probability >= self.auto_threshold
            and probability - second >= self.auto_min_margin
            and best.names_missing <= self.auto_max_names_missing
            and words >= get_settings().auto_answer_min_words
        ):
            return "auto"
        if probability >= self.suggest_threshold:
            return "suggest"
        return "none"

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
            auto_max_names_missing=float(data["auto_max_names_missing"]),
            auto_min_margin=float(data["auto_min_margin"]),
            suggest_threshold=float(data["suggest_threshold"]),
            runner_up=RunnerUp(**data["runner_up"]),
        )


def model_file() -> Path:
    """Where the calibrated model lives (`MATCH_MODEL_FILE`, default the shipped one)."""
    return get_settings().match_model_file


def load_model(path: Path | None = None) -> MatchModel:
    """The calibrated coefficients and thresholds (`MATCH_MODEL_FILE`): the one place they are read."""
    return _load_model(path or model_file())


def forget_model() -> None:
    """Read the model file again on next use (after `claims calibrate` rewrote it)."""
    _load_model.cache_clear()


@lru_cache(maxsize=4)
def _load_model(path: Path) -> MatchModel:
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


# --------------------------------------------------------------------------- scoring


@dataclass
class Scored:
    """A candidate verdict with its features and the model's probability that it is the right one."""

    verdict_id: int
    features: np.ndarray
    probability: float = 0.0
    names_missing: float = 0.0  # share of the verdict claim's names the text never mentions


def _best_per_verdict(
    corpus: VerdictCorpus, hits: list[tuple[int, float]], allowed: set[int]
) -> tuple[dict[int, float], dict[int, float]]:
    """Per allowed verdict: the best score over all its texts, and over its claim-stating texts."""
    best: dict[int, float] = {}
    statement: dict[int, float] = {}
    for text_id, score in hits:
        t = corpus.texts.get(text_id)
        if t is None or t.verdict_id not in allowed:
            continue
        if score > best.get(t.verdict_id, -math.inf):
            best[t.verdict_id] = score
        if t.kind != "summary" and score > statement.get(t.verdict_id, -math.inf):
            statement[t.verdict_id] = score
    return best, statement


def score_candidates(
    corpus: VerdictCorpus,
    query: str,
    query_vector: np.ndarray,
    *,
    allowed: set[int],
    model: MatchModel | None,
    runner_up: RunnerUp | None = None,
) -> list[Scored]:
    """Rank verdicts in `allowed` for the query (best first); features only when `model` is None.

    Margins are measured against `runner_up` floors (default: the model's; none without a model).
    """
    floor = runner_up or (model.runner_up if model is not None else RunnerUp())
    assert corpus.dense is not None
    lex, _ = _best_per_verdict(corpus, corpus.lexical.search(query, len(corpus.lexical)), allowed)
    dense, claim_dense = _best_per_verdict(
        corpus, corpus.dense.search(query_vector, len(corpus.dense))[0], allowed
    )
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
    lex_top[1] = max(lex_top[1], floor.lex_share * lex_top[0])
    dense_top[1] = max(dense_top[1], floor.dense)
    qkeys = near_duplicate.key_tokens(query)
    qlength = math.log1p(near_duplicate.word_count(query))
    qlist = tokens(query)
    qterms, qpairs = set(qlist), term_pairs(qlist)
    qwords = set(near_duplicate.canonical(query).split())
    scored = []
    for v in chosen:
        lv, dv = lex.get(v, 0.0), dense.get(v, 0.0)
        lother = lex_top[1] if lex_rank.get(v) == 0 else lex_top[0]
        dother = dense_top[1] if dense_rank.get(v) == 0 else dense_top[0]
        keys = corpus.keys.get(v, frozenset())
        shared = len(qkeys & keys)
        texts = corpus.terms.get(v) or [frozenset()]
        statements = corpus.statements.get(v) or texts
        x = np.array(
            [
                lv / lmax,
                (lv - lother) / lmax,
                math.log1p(lv),
                math.log1p(lex_rank.get(v, len(lex_order) + 1)),  # no BM25 hit: past the last
                dv,
                dv - dother,
                math.log1p(dense_rank.get(v, len(dense_order))),
                math.log1p(shared),
                shared / max(1, len(keys)),
                qlength,
                max(len(t & qterms) / max(1, len(t)) for t in texts),
                max(len(t & qterms) / max(1, len(qterms)) for t in texts),
                max(_weighted_cover(corpus, t, qterms) for t in statements),
                claim_dense.get(v, dv),
                max((len(p & qpairs) / len(p) for p in corpus.pairs.get(v, []) if p), default=0.0),
            ]
        )
        missing = min((len(n - qwords) / len(n) for n in corpus.names.get(v, []) if n), default=0.0)
        scored.append(Scored(v, x, names_missing=missing))
    if model is not None:
        probabilities = model.probability(np.stack([s.features for s in scored]))
        for s, p in zip(scored, probabilities, strict=True):
            s.probability = float(p)
        scored.sort(key=lambda s: -s.probability)
    return scored


def _weighted_cover(corpus: VerdictCorpus, terms: frozenset[str], query_terms: set[str]) -> float:
    """Share of a text's IDF weight the query contains: its rarest words (a brand, a country) count most."""
    total = sum(corpus.lexical.idf(t) for t in terms)
    return sum(corpus.lexical.idf(t) for t in terms & query_terms) / total if total else 0.0


def _candidates(session: Session, scored: list[tuple[int, float]]) -> list[VerdictCandidate]:
    """Fresh verdict rows for the chosen ids (another process may have withdrawn one a moment ago)."""
    now = utcnow()
    ids = [v for v, _ in scored]
    rows = {v.id: v for v in session.exec(select(Verdict).where(col(Verdict.id).in_(ids)))}
    out = []
    for vid, score in scored:
        v = rows.get(vid)
        if v is None or not v.is_servable(now):
            continue
        out.append(VerdictCandidate(vid, v.claim, v.rating, v.summary, v.url, v.published_at, score))
    return out


# --------------------------------------------------------------------------- the hash path


def _clean(text: str) -> tuple[str, int]:
    query = " ".join((text or "").split())
    return query, near_duplicate.word_count(query)


def _from_hashes(session: Session, corpus: VerdictCorpus, query: str, words: int) -> MatchResult | None:
    """An exact/near-exact forward of a verdict text, or a verbatim repeat matched before (locked)."""
    corpus.sync_texts(session)
    now = utcnow()
    allowed = corpus.servable_ids(now)
    duplicate = corpus.find_duplicate(query, allowed)
    if duplicate is not None:
        found = _candidates(session, [(duplicate, 1.0)])
        if found:
            decision: Decision = "auto" if words >= get_settings().auto_answer_min_words else "suggest"
            log.info("match decision=%s verdict=%s via=duplicate words=%d", decision, duplicate, words)
            return MatchResult(query, decision, found[0], found, via="duplicate")
    entry = corpus.results.get(near_duplicate.text_hash(query))
    if entry is None or entry[0] != corpus.mark:
        return None
    cached: MatchResult = entry[1]
    # Fresh rows, as for any answer: a verdict may have expired or been withdrawn or corrected since.
    fresh = _candidates(session, [(c.verdict_id, c.score) for c in cached.candidates])
    if len(fresh) != len(cached.candidates):
        return None
    verdict = fresh[0] if cached.verdict is not None else None
    return replace(cached, query=query, verdict=verdict, candidates=fresh, cached=True)


def known_forward(text: str, *, session: Session) -> MatchResult | None:
    """The answer to an exact or near-exact forward of a verdict's text, or to a verbatim repeat of
    a text matched before in this process, from hashes alone (no model, a few ms); else None.

    Cheap enough to call before NLU: a viral forward is answered without classifying it.
    """
    query, words = _clean(text)
    if not words:
        return None
    corpus = corpus_for(session)
    with corpus.lock:
        return _from_hashes(session, corpus, query, words)


def match_claim(
    text: str,
    *,
    session: Session,
    exclude: frozenset[int] = frozenset(),
    query_vector: np.ndarray | None = None,
) -> MatchResult:
    """Match a citizen's text against published, unexpired verdicts.

    `exclude` matches as if those verdicts had never been indexed (calibration simulates new claims
    with it); `query_vector` lets a batch embed its queries at once (`match_many`).
    """
    query, words = _clean(text)
    if not words:
        return MatchResult(query, "none", None, [])
    if not exclude:
        known = known_forward(query, session=session)
        if known is not None:
            return known
    return _match_model(session, query, words, exclude, query_vector)


def _match_model(
    session: Session, query: str, words: int, exclude: frozenset[int], query_vector: np.ndarray | None
) -> MatchResult:
    """BM25 + dense retrieval and the learned model; the embedding runs outside the corpus lock."""
    if query_vector is None:
        query_vector = embeddings.query_vectors([query])
    corpus = corpus_for(session)
    with corpus.lock:
        corpus.sync_texts(session)
        mark = corpus.mark
        allowed = corpus.servable_ids(utcnow()) - exclude
        if not allowed:
            return MatchResult(query, "none", None, [])
        corpus.sync_terms()
        corpus.sync_vectors(session)
        view = corpus.without(set(exclude)) if exclude else corpus
        model = load_model()
        scored = score_candidates(view, query, query_vector, allowed=allowed, model=model)
    found = _candidates(session, [(s.verdict_id, s.probability) for s in scored[:TOP_CANDIDATES]])
    if not found:
        result = MatchResult(query, "none", None, [])
    else:
        best = next(s for s in scored if s.verdict_id == found[0].verdict_id)
        second = max((s.probability for s in scored if s is not best), default=0.0)
        decision = model.decide(best, second, words)
        log.info(
            "match decision=%s verdict=%s p=%.3f words=%d",
            decision,
            found[0].verdict_id,
            found[0].score,
            words,
        )
        result = MatchResult(query, decision, found[0] if decision != "none" else None, found)
    if not exclude:
        corpus.results.put(near_duplicate.text_hash(query), (mark, result))
    return result


def match_many(texts: list[str], *, session: Session) -> list[MatchResult]:
    """`match_claim` for a batch: hash answers first, then one embedding call for all the others."""
    cleaned = [_clean(t) for t in texts]
    known = [known_forward(q, session=session) if n else None for q, n in cleaned]
    todo = [i for i, r in enumerate(known) if r is None and cleaned[i][1]]
    vectors = embeddings.query_vectors([cleaned[i][0] for i in todo])
    for i, vector in zip(todo, vectors, strict=True):
        known[i] = _match_model(session, *cleaned[i], frozenset(), vector)
    return [
        r if r is not None else MatchResult(q, "none", None, [])
        for r, (q, _) in zip(known, cleaned, strict=True)
    ]


def sync(session: Session) -> int:
    """Bring this process's verdict index up to date (embedding what lacks vectors); returns its size."""
    corpus = corpus_for(session)
    with corpus.lock:
        corpus.sync_texts(session)
        corpus.sync_terms()
        corpus.sync_vectors(session)
        return len(corpus.texts)
