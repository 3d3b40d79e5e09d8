"""The in-app fallback classifier: accurate enough on held-out messages, honest about doubt, cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.evaluate import evaluate
from nlu.fallback import FallbackClassifier, load_or_train
from nlu.settings import PROJECT_DIR
from nlu.training_data import load

from .conftest import make_settings

HELDOUT = load(PROJECT_DIR / "eval" / "heldout.yml").examples


def test_heldout_accuracy_floor(fallback: FallbackClassifier) -> None:
    report = evaluate("fallback", fallback.parse_many, HELDOUT)
    assert report.accuracy >= 0.90, report.render(show_misses=True)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("pagi kaka, beta mau tanya", "greet"),
        ("air PDAM di Oebufu mati dari pagi, kapan jalan lagi?", "ask_info"),
        ("beta dapa pesan ini di grup: BESOK ADA GEMPA BESAR DI KUPANG SEBARKAN!! betul ko?", "check_claim"),
        ("sonde usah kirim beta berita lai", "unsubscribe_digest"),
        ("tolong hapus beta pung nomor deng semua chat", "delete_my_data"),
    ],
)
def test_classifies_everyday_kupang_messages(fallback: FallbackClassifier, text: str, intent: str) -> None:
    result = fallback.parse(text)
    assert (result.intent, result.source) == (intent, "fallback")
    assert result.ranking[0] == {"name": intent, "confidence": result.confidence}


def test_low_confidence_becomes_nlu_fallback_with_the_ranking_kept(fallback: FallbackClassifier) -> None:
    unsure = FallbackClassifier(
        fallback._vectorizer, fallback._model, load(PROJECT_DIR / "data" / "nlu.yml"), 0.999
    )
    result = unsure.parse("kapan air PDAM jalan?")
    assert result.intent == "nlu_fallback"
    assert result.ranking[0]["name"] == "ask_info"
    assert result.confidence == result.ranking[0]["confidence"] < 0.999


def test_blank_text_is_nlu_fallback_not_an_error(fallback: FallbackClassifier) -> None:
    result = fallback.parse("   ")
    assert (result.intent, result.confidence) == ("nlu_fallback", 0.0)


def test_entities_survive_a_rasa_outage(fallback: FallbackClassifier) -> None:
    result = fallback.parse("PLN Kupang kirim sms dari 081298765432, betul ko?")
    assert {(e["entity"], e["value"]) for e in result.entities} == {
        ("organisation", "PLN"),
        ("phone", "081298765432"),
    }


def test_trained_model_is_cached_on_disk_and_reused(
    nlu_work: Path, fallback: FallbackClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert list(nlu_work.glob("fallback-*.pkl")), "the session fixture trained and cached a model"

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("retrained although a cached model exists")

    monkeypatch.setattr(FallbackClassifier, "train", classmethod(no_training))
    again = load_or_train(make_settings(nlu_work))
    text = "syarat bikin KTP apa sa?"
    assert again.parse(text) == fallback.parse(text)


TINY = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - halo
    - selamat pagi
- intent: thanks
  examples: |
    - terima kasih
    - makasih banyak
"""


def _tiny_project(root: Path, extra: str = "") -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "nlu.yml").write_text(TINY + extra)
    return root


def test_changed_training_data_trains_a_new_model(tmp_path: Path) -> None:
    work = tmp_path / "work"
    settings = make_settings(work, project_dir=_tiny_project(tmp_path / "a"))
    assert load_or_train(settings).parse("horas").intent != "goodbye"
    extra = "- intent: goodbye\n  examples: |\n    - horas, sampai jumpa\n    - horas lae, bye\n"
    changed = make_settings(work, project_dir=_tiny_project(tmp_path / "b", extra))
    assert load_or_train(changed).parse("horas lae").intent == "goodbye"
    assert len(list(work.glob("fallback-*.pkl"))) == 2


def test_unreadable_cache_is_rebuilt(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "work", project_dir=_tiny_project(tmp_path / "p"))
    load_or_train(settings)
    (cached,) = (tmp_path / "work").glob("fallback-*.pkl")
    cached.write_bytes(b"not a pickle")
    assert load_or_train(settings).parse("makasih ya").intent == "thanks"
    assert cached.read_bytes() != b"not a pickle"
