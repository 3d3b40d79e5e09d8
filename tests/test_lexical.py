"""Lexical index: BM25 over stemmed, normalised terms, keyed by DB ids, saved as terms."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_base.lexical import LexicalIndex

DOCS = {
    11: "PDAM Kota Kupang menghentikan distribusi air bersih di Kelurahan Oebobo selama perbaikan pipa.",
    12: "Pemerintah kota membagikan bantuan sosial beras kepada warga terdampak banjir.",
    13: "Jadwal vaksinasi COVID-19 dosis kedua di puskesmas Oesapa dimulai Senin.",
}


def build(tmp_path: Path) -> LexicalIndex:
    index = LexicalIndex("passages", directory=tmp_path)
    index.add(list(DOCS), list(DOCS.values()))
    index.refresh()
    return index


def test_kupang_malay_question_finds_the_standard_indonesian_passage(tmp_path: Path) -> None:
    index = build(tmp_path)
    hits = index.search("beta dengar aer PDAM son jalan di Oebobo", k=3)
    assert hits[0][0] == 11
    assert index.search("katong dapa bansos beras ko?", k=3)[0][0] == 12
    assert [i for i, _ in index.search("vaksin covid-19", k=3)] == [13]


def test_only_matching_documents_are_returned(tmp_path: Path) -> None:
    index = build(tmp_path)
    assert index.search("yang itu apa ya", k=5) == []  # only stop-words
    assert index.search("zzzz qqqq", k=5) == []
    assert [i for i, _ in index.search("banjir", k=5)] == [12]


def test_changes_are_seen_after_refresh(tmp_path: Path) -> None:
    index = build(tmp_path)
    index.add([14], ["Banjir rob melanda pesisir Kupang, warga diminta waspada."])
    assert index.dirty and [i for i, _ in index.search("banjir rob", k=5)] == [12]  # old index until refresh
    index.refresh()
    assert index.search("banjir rob", k=5)[0][0] == 14
    assert index.remove([14, 99]) == 1
    index.refresh()
    assert 14 not in {i for i, _ in index.search("banjir rob", k=5)}


def test_save_and_load_keep_terms_without_retokenizing(tmp_path: Path) -> None:
    index = build(tmp_path)
    index.save()
    loaded = LexicalIndex.load("passages", directory=tmp_path)
    assert loaded.ids() == set(DOCS) and loaded.dirty
    loaded.refresh()
    for query in ("air bersih oebobo", "bantuan beras", "puskesmas oesapa"):
        assert loaded.search(query, 3) == index.search(query, 3)


def test_unreadable_file_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "passages.terms.npz").write_bytes(b"garbage")
    loaded = LexicalIndex.load("passages", directory=tmp_path)
    loaded.refresh()
    assert len(loaded) == 0 and loaded.search("banjir", 3) == []


def test_empty_and_mismatched_input(tmp_path: Path) -> None:
    index = LexicalIndex("x", directory=tmp_path)
    index.refresh()
    assert index.search("banjir", 5) == []
    with pytest.raises(ValueError, match="2 ids for 1 texts"):
        index.add([1, 2], ["satu"])
    assert len(index) == 0


def test_coverage_weighs_rare_terms_and_penalises_unknown_ones(tmp_path: Path) -> None:
    index = build(tmp_path)
    index.add([14], ["Warga Kota Kupang mengeluh jalan rusak di kota."])
    index.refresh()
    assert index.idf("oebobo") > index.idf("kota") > 0  # "kota" is in 3 of 4 documents
    terms = {"kota", "oebobo"}
    assert index.coverage(terms, 11) == 1.0
    assert 0 < index.coverage({"kota", "oebobo"}, 12) < 0.5  # shares only the common word
    assert index.coverage({"oebobo", "feri"}, 11) < index.coverage({"oebobo"}, 11) == 1.0
    assert index.coverage(set(), 11) == 0.0
