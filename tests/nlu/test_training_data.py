"""The training and held-out data: enough varied examples, real circulated hoaxes, no leakage."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nlu.entities import EntityExtractor
from nlu.settings import PROJECT_DIR
from nlu.training_data import NluDataError, clean, load, strip_annotations

REQUIRED = {
    "greet",
    "goodbye",
    "thanks",
    "help",
    "ask_info",
    "check_claim",
    "subscribe_digest",
    "unsubscribe_digest",
    "delete_my_data",
    "out_of_scope",
}
TRAIN = load(PROJECT_DIR / "data" / "nlu.yml")
HELDOUT = load(PROJECT_DIR / "eval" / "heldout.yml")


def _count(examples: list[tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, intent in examples:
        counts[intent] = counts.get(intent, 0) + 1
    return counts


def test_every_required_intent_has_at_least_30_training_examples() -> None:
    counts = _count(TRAIN.examples)
    assert set(counts) == REQUIRED
    assert min(counts.values()) >= 30, counts


def test_heldout_covers_every_intent_with_at_least_10_messages() -> None:
    counts = _count(HELDOUT.examples)
    assert set(counts) == REQUIRED
    assert min(counts.values()) >= 10, counts


def test_heldout_messages_never_appear_in_training() -> None:
    train = {clean(t) for t, _ in TRAIN.examples}
    leaked = [t for t, _ in HELDOUT.examples if clean(t) in train]
    assert not leaked


def test_kupang_malay_and_english_are_in_the_training_data() -> None:
    words = {w for t, _ in TRAIN.examples for w in clean(t).replace("?", " ").replace(",", " ").split()}
    assert {"beta", "lu", "sonde", "su", "pi", "deng", "ko", "sa", "pung"} <= words
    assert {"the", "my", "this"} <= words


def test_check_claim_includes_real_circulated_texts(shared_data: Path) -> None:
    with (shared_data / "factchecks" / "turnbackhoax_dev.csv").open(encoding="utf-8") as f:
        circulated = [clean(row["message"]) for row in csv.DictReader(f)]
    claims = [clean(t) for t, i in TRAIN.examples if i == "check_claim"]
    real = [c for c in claims if len(c) > 40 and any(c[:60] in m for m in circulated)]
    assert len(real) >= 15, len(real)
    assert any(len(c) > 250 for c in real), "long chain messages are part of the data"


def test_annotations_are_stripped_to_what_the_citizen_typed() -> None:
    assert (
        strip_annotations("kapan air [PDAM](organisation) di [Oesapa](place)?") == "kapan air PDAM di Oesapa?"
    )
    assert all("](" not in t for t, _ in TRAIN.examples)


def test_clean_folds_styled_unicode_and_case() -> None:
    assert clean("𝘽𝙪𝙧𝙪𝙖𝙣   DAFTAR") == "buruan daftar"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nlu: [", "nlu.yml"),
        ("version: '3.1'\n", "top-level `nlu:` list"),
        ("nlu:\n- intent: greet\n  examples: |\n    halo\n", "example line 1"),
        ("nlu:\n- intent: greet\n  examples: [halo]\n", "nlu entry 1"),
    ],
)
def test_malformed_files_fail_with_a_clear_location(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(content)
    with pytest.raises(NluDataError, match=message.replace("`", ".").replace("(", ".")):
        load(path)


def test_entities_from_lookups_and_regexes() -> None:
    found = EntityExtractor(TRAIN).extract(
        "air pdam di Oesapa Barat mati, kata 081234567890, lihat https://pdam-kupang.xyz/info"
    )
    assert [(e["entity"], e["value"]) for e in found] == [
        ("organisation", "pdam"),
        ("place", "Oesapa Barat"),
        ("phone", "081234567890"),
        ("url", "https://pdam-kupang.xyz/info"),
    ]
    first = found[1]
    assert "air pdam di Oesapa Barat"[first["start"] : first["end"]] == "Oesapa Barat"


def test_words_inside_other_words_are_not_entities() -> None:
    assert EntityExtractor(TRAIN).extract("saya suka belokan dan plnx") == []
