"""Training and honest evaluation of the claim matcher on past fact-checks with circulated texts.

Each dev row pairs a verdict with the message as it circulated (`message`): the query a citizen would
forward. A fixed split by URL hash keeps a third of the verdicts out of training: calibration never
sees their messages, and `evaluate` reports on them only. "New claims" are simulated by matching the
message against the index without its verdict, as if nobody had ever checked it (BM25 statistics
included), so the model learns, and the report measures, what a never-checked forward looks like.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, create_engine, select

from knowledge_base import embeddings, matching
from knowledge_base.db import migrate
from knowledge_base.models import Verdict
from knowledge_base.verdict_corpus import corpus_for, release
from knowledge_base.verdict_import import import_csv

log = logging.getLogger(__name__)

HELD_OUT_SHARE = 1 / 3
# Targets for choosing thresholds on out-of-fold predictions of the calibration split (issue 9: a
# citizen told "HOAKS" about something nobody checked is the costliest error the matcher can make).
MAX_FALSE_AUTO_RATE = 0.005  # of new claims answered automatically with some other verdict
MIN_AUTO_PRECISION = 0.98  # of automatic answers to known claims that are the right verdict
MAX_SUGGEST_RATE_NEW = 0.2  # of new claims shown (necessarily wrong) suggestions
# Margins in a corpus too small to have competitors are measured against a runner-up as close as
# this share of calibration queries had at least (a low percentile: real margins keep their value).
RUNNER_UP_PERCENTILE = 5
# Probability leads over the second candidate the automatic answer may be required to have.
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class DevPair:
    url: str
    message: str


def read_pairs(path: Path) -> list[DevPair]:
    """(verdict URL, circulated message) for each row that has both."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [
            DevPair(row["url"].strip(), " ".join(row["message"].split()))
            for row in csv.DictReader(handle)
            if (row.get("url") or "").strip() and (row.get("message") or "").strip()
        ]


def split(pairs: list[DevPair]) -> tuple[list[DevPair], list[DevPair]]:
    """Fixed (calibration, held-out) split by SHA-1 of the URL: stable across runs and machines."""
    ordered = sorted(pairs, key=lambda p: hashlib.sha1(p.url.encode()).hexdigest())
    cut = len(ordered) - round(len(ordered) * HELD_OUT_SHARE)
    return ordered[:cut], ordered[cut:]


@contextmanager
def dev_session(csv_path: Path) -> Iterator[tuple[Session, dict[str, int]]]:
    """A throw-away SQLite database holding the CSV's verdicts (claim and summary indexed, not messages)."""
    with tempfile.TemporaryDirectory(prefix="kabashoax-match-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'dev.sqlite3'}"
        migrate(url)
        engine = create_engine(url)
        try:
            with Session(engine, expire_on_commit=False) as session:
                report = import_csv(csv_path, session=session)
                session.commit()
                log.info("dev verdicts: %d imported, %d bad rows", report.added, len(report.errors))
                matching.sync(session)
                session.commit()
                ids = {
                    url: vid
                    for vid, url in session.exec(select(Verdict.id, Verdict.url)).all()
                    if url and vid is not None
                }
                yield session, ids
                release(session)
        finally:
            engine.dispose()


def _query_vectors(pairs: list[DevPair]) -> np.ndarray:
    return embeddings.query_vectors([p.message for p in pairs])


# Per calibration query: its candidates with the true verdict indexed, as if it never was, the true id.
Candidates = list[tuple[list[matching.Scored], list[matching.Scored], int]]


def _features(
    session: Session, pairs: list[DevPair], ids: dict[str, int], runner_up: matching.RunnerUp
) -> Candidates:
    """Per query: candidates with the true verdict indexed, candidates as if it never was, the true id."""
    corpus = corpus_for(session)
    everyone = set(ids.values())
    out = []
    for pair, vector in zip(pairs, _query_vectors(pairs), strict=True):
        true_id = ids[pair.url]
        known = matching.score_candidates(
            corpus, pair.message, vector, allowed=everyone, model=None, runner_up=runner_up
        )
        new = matching.score_candidates(
            corpus.without({true_id}),
            pair.message,
            vector,
            allowed=everyone - {true_id},
            model=None,
            runner_up=runner_up,
        )
        out.append((known, new, true_id))
    return out


def runner_up_floors(
    data: list[tuple[list[matching.Scored], list[matching.Scored], int]],
) -> matching.RunnerUp:
    """The runner-ups the calibration queries met in the full corpus (known claims, margins measured
    with no floor): a smaller corpus is measured as if it had one at least this close."""
    lex_margin, dense, dense_margin = (
        matching.FEATURES.index(f) for f in ("lex_margin", "dense", "dense_margin")
    )
    lex_share, dense_second = [], []
    for known, _new, _true in data:
        if len(known) < 2:
            continue
        top_lex = max(known, key=lambda c: c.features[lex_margin]).features
        top_dense = max(known, key=lambda c: c.features[dense_margin]).features
        lex_share.append(1.0 - top_lex[lex_margin])
        dense_second.append(top_dense[dense] - top_dense[dense_margin])
    return matching.RunnerUp(
        lex_share=round(float(np.percentile(lex_share, RUNNER_UP_PERCENTILE)), 4),
        dense=round(float(np.percentile(dense_second, RUNNER_UP_PERCENTILE)), 4),
    )


@dataclass(frozen=True)
class _Top:
    """The best candidate of one out-of-fold query: its probability, the second candidate's, whether
    it is the right verdict, and the share of its claim's names the message does not mention."""

    probability: float
    second: float
    right: bool
    names_missing: float


@dataclass(frozen=True)
class Thresholds:
    auto: float
    max_names_missing: float
    min_margin: float
    suggest: float
    coverage: float  # out-of-fold share of known claims answered automatically (rightly)

    def autos(self, tops: list[_Top]) -> list[_Top]:
        return [
            x
            for x in tops
            if x.probability >= self.auto
            and x.probability - x.second >= self.min_margin
            and x.names_missing <= self.max_names_missing
        ]


def choose_thresholds(known: list[_Top], new: list[_Top]) -> Thresholds:
    """The auto rule (probability, lead over the second candidate, names) that answers most known
    claims within the targets; of rules that answer as many, the strictest.

    For each allowed share of missing names and each lead, the lowest probability threshold whose
    automatic answers are right `MIN_AUTO_PRECISION` of the time and that lets so few new claims
    through that the bound (k + 1) / (n + 1) on the rate for the next, unseen one stays within
    `MAX_FALSE_AUTO_RATE` (k of n out-of-fold new claims answered; a rank argument, valid for
    exchangeable queries).
    """
    best = Thresholds(1.0, 0.0, 1.0, 1.0, 0.0)
    for m in sorted({x.names_missing for x in known} | {1.0}):
        for margin in sorted(MARGINS, reverse=True):
            for t in (round(float(v), 2) for v in np.arange(0.05, 1.0, 0.01)):
                rule = Thresholds(t, m, margin, 1.0, 0.0)
                k_auto, n_auto = rule.autos(known), rule.autos(new)
                right = sum(x.right for x in k_auto)
                if (len(n_auto) + 1) / (len(new) + 1) > MAX_FALSE_AUTO_RATE:
                    continue
                if k_auto and right / (len(k_auto) + len(n_auto)) < MIN_AUTO_PRECISION:
                    continue
                coverage = right / max(1, len(known))
                if coverage > best.coverage:  # ties keep the stricter rule found first
                    best = replace(rule, coverage=coverage)
                break  # higher thresholds with these gates answer fewer
    suggest, shown = 0.05, MAX_SUGGEST_RATE_NEW * len(new)
    while suggest < best.auto and sum(x.probability >= suggest for x in new) > shown:
        suggest = round(suggest + 0.01, 2)
    return replace(best, suggest=min(suggest, best.auto))


def calibrate(csv_path: Path, out: Path | None = None) -> dict[str, Any]:
    """Fit the logistic regression on the calibration split and choose thresholds; writes `out`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    train, held_out = split(read_pairs(csv_path))
    with dev_session(csv_path) as (session, ids):
        runner_up = runner_up_floors(_features(session, train, ids, matching.RunnerUp()))
        data = _features(session, train, ids, runner_up)
    rows, labels, groups = [], [], []
    for q, (known, new, true_id) in enumerate(data):
        for candidates in (known, new):
            for c in candidates:
                rows.append(c.features)
                labels.append(int(c.verdict_id == true_id))
                groups.append(q)
    x, y, g = np.stack(rows), np.array(labels), np.array(groups)

    def fit(idx: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
        scaler = StandardScaler().fit(x[idx])
        return scaler, LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x[idx]), y[idx])

    # Out-of-fold probabilities: thresholds chosen on predictions the model did not train on.
    oof = np.zeros(len(y))
    for train_idx, test_idx in GroupKFold(n_splits=5).split(x, y, g):
        scaler, clf = fit(train_idx)
        oof[test_idx] = clf.predict_proba(scaler.transform(x[test_idx]))[:, 1]
    known_top: list[_Top] = []
    new_top: list[_Top] = []
    pos = 0
    for known, new, true_id in data:
        for candidates, sink in ((known, known_top), (new, new_top)):
            probs = oof[pos : pos + len(candidates)]
            pos += len(candidates)
            if not candidates:
                sink.append(_Top(0.0, 0.0, False, 1.0))
                continue
            order = np.argsort(-probs)
            best = candidates[int(order[0])]
            second = float(probs[order[1]]) if len(order) > 1 else 0.0
            sink.append(_Top(float(probs[order[0]]), second, best.verdict_id == true_id, best.names_missing))
    chosen = choose_thresholds(known_top, new_top)

    out = out or matching.model_file()
    scaler, clf = fit(np.arange(len(y)))
    model = {
        "features": list(matching.FEATURES),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": clf.coef_[0].tolist(),
        "intercept": float(clf.intercept_[0]),
        "auto_threshold": chosen.auto,
        "auto_max_names_missing": chosen.max_names_missing,
        "auto_min_margin": chosen.min_margin,
        "suggest_threshold": chosen.suggest,
        "runner_up": asdict(runner_up),
        "embedding_model": embeddings.model_name(),
        "trained_on": f"{csv_path.name}: {len(train)} calibration queries, {len(held_out)} held out",
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "out_of_fold": {
            "recall_at_1": round(float(np.mean([x.right for x in known_top])), 3),
            "auto_coverage": round(chosen.coverage, 3),
            "false_auto_new": round(len(chosen.autos(new_top)) / max(1, len(new_top)), 3),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    matching.forget_model()
    return model


@dataclass
class Evaluation:
    """Held-out figures of the matcher as it runs (the calibrated model and its thresholds)."""

    queries: int
    recall_at_1: float
    recall_at_3: float
    auto_coverage: float  # known claims answered automatically
    auto_precision: float  # of those, with the right verdict
    suggest_or_auto_recall: float  # known claims whose verdict was auto-answered or among suggestions
    false_auto_new: float  # new claims (verdict never indexed) answered automatically: always wrong
    new_claims_auto_answered: int  # the same as a count, of `queries`
    suggest_rate_new: float  # new claims that got suggestions
    duplicate_hits: int  # answered by the hash / near-duplicate check
    bm25_recall_at_1: float  # baselines on the same queries: BM25 alone
    dense_recall_at_1: float  # and e5 cosine alone
    seconds_per_query: float

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def evaluate(csv_path: Path) -> Evaluation:
    """Match each held-out message through `match_claim`, with its verdict indexed and as if it never
    was (the never-checked split: the same real circulated texts, their verdicts left out)."""
    import time

    _train, held_out = split(read_pairs(csv_path))
    with dev_session(csv_path) as (session, ids):
        vectors = _query_vectors(held_out)
        r1 = r3 = autos = right_autos = reachable = new_autos = new_suggests = dupes = bm25_r1 = dense_r1 = 0
        corpus, everyone = corpus_for(session), set(ids.values())
        model = matching.load_model()
        started = time.perf_counter()
        for pair, vector in zip(held_out, vectors, strict=True):
            true_id = ids[pair.url]
            known = matching.match_claim(pair.message, session=session, query_vector=vector)
            ranked = [c.verdict_id for c in known.candidates]
            r1 += ranked[:1] == [true_id]
            r3 += true_id in ranked[:3]
            dupes += known.via == "duplicate"
            if known.decision == "auto":
                autos += 1
                right_autos += known.verdict is not None and known.verdict.verdict_id == true_id
            reachable += known.decision != "none" and true_id in ranked[: matching.TOP_CANDIDATES]
            new = matching.match_claim(
                pair.message, session=session, exclude=frozenset({true_id}), query_vector=vector
            )
            new_autos += new.decision == "auto"
            new_suggests += new.decision == "suggest"
        elapsed = time.perf_counter() - started
        lex_rank, dense_rank = matching.FEATURES.index("lex_rank"), matching.FEATURES.index("dense_rank")
        for pair, vector in zip(held_out, vectors, strict=True):
            scored = matching.score_candidates(
                corpus, pair.message, vector, allowed=everyone, model=None, runner_up=model.runner_up
            )
            truth = next((c.features for c in scored if c.verdict_id == ids[pair.url]), None)
            bm25_r1 += truth is not None and truth[lex_rank] == 0
            dense_r1 += truth is not None and truth[dense_rank] == 0
    n = max(1, len(held_out))
    return Evaluation(
        queries=len(held_out),
        recall_at_1=r1 / n,
        recall_at_3=r3 / n,
        auto_coverage=autos / n,
        auto_precision=right_autos / autos if autos else 1.0,
        suggest_or_auto_recall=reachable / n,
        false_auto_new=new_autos / n,
        new_claims_auto_answered=new_autos,
        suggest_rate_new=new_suggests / n,
        duplicate_hits=dupes,
        bm25_recall_at_1=bm25_r1 / n,
        dense_recall_at_1=dense_r1 / n,
        seconds_per_query=elapsed / (2 * n),
    )
