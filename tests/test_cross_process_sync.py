"""The per-process caches follow the database whatever order other processes commit in: a verdict
committed after a later one is still matched, a passage committed after a later one is still found,
and a verdict withdrawn or expired by a direct change (no watermark moves) is never served again.
Several sessions on committed databases stand in for several processes (the caches are per process,
keyed by database); the real multi-process runs are in tests/test_scale_postgres.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from knowledge_base import matching, verdict_corpus
from knowledge_base.db import engine_for, migrate
from knowledge_base.models import Article, Passage, Source, Verdict
from knowledge_base.verdicts import publish_verdict
from tests.helpers.procs import scratch_schema

CLAIMS = (
    "Air PDAM Kota Kupang dicampur racun tikus mulai besok pagi, jangan diminum",
    "Jembatan Liliba ditutup total selama satu bulan mulai minggu depan untuk perbaikan",
)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A committed database that several sessions (standing in for processes) share."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sync.sqlite3'}"
        migrate(url)
        yield url
    else:
        with scratch_schema() as url:
            yield url
    with Session(engine_for(url)) as s:
        verdict_corpus.release(s)


@pytest.fixture
def pg() -> Iterator[str]:
    """PostgreSQL only: two writers at once (SQLite serialises them, so the orders below cannot occur)."""
    with scratch_schema() as url:
        yield url
        with Session(engine_for(url)) as s:
            verdict_corpus.release(s)


def in_review(url: str, claim: str) -> int:
    with Session(engine_for(url)) as s:
        v = Verdict(claim=claim, rating="HOAKS", summary=f"Tidak benar: {claim.lower()}", status="in_review")
        s.add(v)
        s.commit()
        return v.id or 0


def matched(url: str, text: str) -> int | None:
    """The verdict a citizen forwarding `text` gets automatically, as a worker's own session sees it."""
    with Session(engine_for(url)) as s:
        result = matching.match_claim(text, session=s)
        return result.verdict.verdict_id if result.decision == "auto" and result.verdict else None


def test_a_verdict_committed_after_a_later_one_is_still_matched(pg: str) -> None:
    db = pg
    first, second = in_review(db, CLAIMS[0]), in_review(db, CLAIMS[1])
    assert matched(db, CLAIMS[0]) is None  # this worker's cache now holds both as not published
    engine = engine_for(db)
    with Session(engine) as slow, Session(engine) as quick:
        publish_verdict(first, session=slow)  # its updated_at is the earlier one ...
        slow.flush()
        publish_verdict(second, session=quick)
        quick.commit()
        assert matched(db, CLAIMS[1]) == second  # the cache saw the later publication first
        slow.commit()  # ... but it is committed last
    assert matched(db, CLAIMS[0]) == first


def test_a_withdrawn_or_expired_verdict_is_never_served_even_when_no_watermark_moves(db: str) -> None:
    verdict_id = in_review(db, CLAIMS[0])
    with Session(engine_for(db)) as s:
        publish_verdict(verdict_id, session=s)
        s.commit()
    assert matched(db, CLAIMS[0]) == verdict_id
    engine = engine_for(db)
    with engine.begin() as conn:  # another process's change, not touching updated_at
        conn.execute(sa.update(Verdict).where(Verdict.id == verdict_id).values(status="withdrawn"))
    assert matched(db, CLAIMS[0]) is None
    expired = datetime.now(UTC) - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(
            sa.update(Verdict).where(Verdict.id == verdict_id).values(status="published", expires_at=expired)
        )
    assert matched(db, CLAIMS[0]) is None
    with engine.begin() as conn:
        conn.execute(sa.update(Verdict).where(Verdict.id == verdict_id).values(expires_at=None))
    assert matched(db, CLAIMS[0]) == verdict_id  # served again once current again


@pytest.mark.slow
def test_a_passage_committed_after_a_later_one_is_still_found(
    pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = pg
    from knowledge_base.embeddings import embed_documents, to_blob
    from knowledge_base.search import search_passages
    from knowledge_base.settings import get_settings

    monkeypatch.setenv("KABASHOAX_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    texts = {
        "https://kota.example.id/pasar": "Pasar Inpres Naikoten buka kembali Senin setelah renovasi atap.",
        "https://kota.example.id/air": "PDAM Kupang memperbaiki pipa induk di Oebobo; air mengalir Rabu.",
    }
    vectors = dict(zip(texts, embed_documents(list(texts.values())), strict=True))
    engine = engine_for(db)
    with Session(engine) as s:
        source = Source(name="kota", outlet="Pemkot Kupang")
        s.add(source)
        s.commit()
        source_id = source.id

    def add(session: Session, url: str) -> None:
        article = Article(
            source_id=source_id, guid=url, url=url, title=url, text=texts[url], content_hash=url
        )
        session.add(article)
        session.flush()
        session.add(Passage(article_id=article.id, text=texts[url], embedding=to_blob(vectors[url])))
        session.flush()

    def found(query: str) -> set[str]:
        with Session(engine) as s:
            return {hit.url for hit in search_passages(query, k=2, session=s)}

    try:
        with Session(engine) as slow, Session(engine) as quick:
            add(slow, "https://kota.example.id/pasar")  # the lower id ...
            add(quick, "https://kota.example.id/air")
            quick.commit()
            assert found("air PDAM Oebobo") == {"https://kota.example.id/air"}
            slow.commit()  # ... committed last, under this worker's watermark
        assert "https://kota.example.id/pasar" in found("kapan pasar Inpres buka lagi?")
    finally:
        get_settings.cache_clear()
