"""Answers to citizens' questions: cited when the knowledge base knows, honest when it does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from knowledge_base.answer import NOT_FOUND, TOO_SHORT, answer_question, snippet
from knowledge_base.dates import format_date
from knowledge_base.normalize import tokens
from knowledge_base.settings import get_settings
from tests.test_search import PASSAGES, add_passages


@pytest.fixture
def index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KABASHOAX_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield get_settings().index_dir
    get_settings.cache_clear()


def test_dates_are_written_in_indonesian_in_kupang_time() -> None:
    assert format_date(datetime(2026, 3, 5, 10, tzinfo=UTC)) == "5 Maret 2026"
    assert format_date(datetime(2026, 12, 31, 20, tzinfo=UTC)) == "1 Januari 2027"  # 04:00 WITA
    assert format_date(None) == "tanpa tanggal"


def test_snippet_prefers_the_sentences_about_the_question() -> None:
    text = "Cuaca cerah. PDAM menghentikan distribusi air di Oebobo. Warga diminta menampung air."
    assert snippet(text, set(tokens("air oebobo")), limit=60) == "PDAM menghentikan distribusi air di Oebobo."
    assert len(snippet("kata " * 200, {"kata"}, limit=50)) <= 50


def test_answer_cites_title_outlet_date_and_link(session: Session, index_dir: Path, snapshot) -> None:
    add_passages(session, PASSAGES)
    answer = answer_question("Beta mau tau, air PDAM di Oebobo mati sampe kapan?", session=session)
    assert answer.found
    assert answer.citations[0].title == PASSAGES[0][0]
    assert "Pos Kupang Test, 1 Maret 2026" in answer.text
    assert "https://kupang.example/a/0" in answer.text
    assert "Oebobo" in answer.text.split("Sumber:")[0]
    assert answer.text == snapshot


@pytest.mark.parametrize(
    "question", ["resep kue lapis legit yang enak", "siapa juara liga inggris tahun ini"]
)
def test_unknown_topic_is_not_answered(session: Session, index_dir: Path, question: str) -> None:
    add_passages(session, PASSAGES)
    answer = answer_question(question, session=session)
    assert not answer.found and answer.text == NOT_FOUND and answer.citations == []


@pytest.mark.parametrize("question", ["", "halo", "apa ya?", "kupang"])
def test_short_question_gets_no_confident_answer(session: Session, index_dir: Path, question: str) -> None:
    add_passages(session, PASSAGES)
    answer = answer_question(question, session=session)
    assert not answer.found and answer.text == TOO_SHORT


def test_empty_knowledge_base(session: Session, index_dir: Path) -> None:
    assert answer_question("kapan pemadaman listrik bergilir selesai", session=session).text == NOT_FOUND
