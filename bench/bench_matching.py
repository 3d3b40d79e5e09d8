"""Claim-matching latency: hash/near-duplicate path, model path, first match after a publish, and scale.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_matching [--scale 5000]

Uses the real dev fact-checks (300 verdicts, claim + summary indexed) in a throw-away SQLite database.
The scale run adds synthetic verdicts (texts of words drawn from the real ones, vectors of real texts
with Gaussian noise, stored as blobs so they need no embedding) to measure the machinery at that size,
not retrieval quality. One thread, as the service runs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from knowledge_base import embeddings, matching, near_duplicate  # noqa: E402
from knowledge_base.cli_claims import default_dev_csv  # noqa: E402
from knowledge_base.match_calibration import dev_session, read_pairs, split  # noqa: E402
from knowledge_base.models import Verdict, VerdictText  # noqa: E402
from knowledge_base.verdicts import add_text, publish_verdict  # noqa: E402


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    print(f"{label:<44} n={len(ms):<4} p50={statistics.median(ms):7.1f} ms  p99={p99:7.1f} ms")


def add_synthetic(session: Session, count: int, rng: random.Random) -> None:
    texts = session.exec(select(VerdictText)).all()
    words = [w for t in texts for w in t.text.split()]
    base = np.stack([embeddings.from_blob(t.embedding or b"") for t in texts])
    for n in range(count):
        verdict = Verdict(
            claim=" ".join(rng.choices(words, k=8)), rating="SALAH", summary="", origin="import"
        )
        session.add(verdict)
        session.flush()
        for kind, length in (("claim", 8), ("summary", 30)):
            row = add_text(session, verdict.id or 0, kind, " ".join(rng.choices(words, k=length)))
            if row is not None:
                v = base[rng.randrange(len(base))] + np.random.default_rng(n).normal(0, 0.05, base.shape[1])
                row.embedding = embeddings.to_blob((v / np.linalg.norm(v)).astype(np.float32))
        if n % 500 == 0:
            session.commit()
    session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=default_dev_csv())
    parser.add_argument("--scale", type=int, default=5000, help="synthetic verdicts to add (0: skip)")
    args = parser.parse_args()
    rng = random.Random(1)
    _train, held_out = split(read_pairs(args.csv))
    with dev_session(args.csv) as (session, _ids):
        claims = [v.claim for v in session.exec(select(Verdict)).all()]
        forwards = iter(["Fwd: " + c.upper() + " !!" for c in claims * 2])
        dup = timed(lambda: matching.match_claim(next(forwards), session=session), 200)
        report("exact forward (hash path, no model)", dup)
        queries = iter([p.message for p in held_out] * 2)
        report(
            "forwarded message (embed + BM25 + FAISS + LR)",
            timed(lambda: matching.match_claim(next(queries), session=session), 100),
        )

        verdict = Verdict(claim="Jembatan Liliba runtuh tadi malam", rating="SALAH", summary="Jembatan aman.")
        session.add(verdict)
        session.flush()
        publish_verdict(verdict.id or 0, session=session)
        session.commit()
        first = timed(
            lambda: matching.match_claim("apakah jembatan liliba runtuh tadi malam?", session=session), 1
        )
        report("first match after a publish (embeds 2 texts)", first)

        if args.scale:
            add_synthetic(session, args.scale, rng)
            started = time.perf_counter()
            size = matching.sync(session)
            print(
                f"sync {size} texts after adding {args.scale} verdicts: {time.perf_counter() - started:.1f} s"
            )
            queries = iter([p.message for p in held_out] * 2)
            report(
                f"forwarded message at {size} texts",
                timed(lambda: matching.match_claim(next(queries), session=session), 100),
            )
            forwards = iter(["Fwd: " + c.upper() for c in claims * 2])
            report(
                f"exact forward at {size} texts",
                timed(lambda: matching.match_claim(next(forwards), session=session), 100),
            )
    sample = " ".join(claims[:5])
    report("simhash of one ~40-word message", timed(lambda: near_duplicate.simhash(sample), 200))


if __name__ == "__main__":
    main()
