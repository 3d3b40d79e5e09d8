"""Exact and near-exact forwards are recognised; look-alike but different messages are not."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knowledge_base.near_duplicate import (
    canonical,
    find_duplicate,
    hamming,
    key_tokens,
    simhash,
    similar,
    text_hash,
)

CHAIN = (
    "Info dari teman di Dinas Kesehatan: mulai besok air PDAM Kota Kupang dicampur kaporit dosis tinggi, "
    "jangan diminum sampai tanggal 20 Maret. Sebarkan ke keluarga dan grup RT!"
)


def candidates(*texts: str) -> list[tuple[int, str, int, str]]:
    return [(n, text_hash(t), simhash(t), t) for n, t in enumerate(texts)]


def test_forward_markers_punctuation_and_emoji_do_not_make_a_new_message() -> None:
    forwarded = "Forwarded many times\n👉 " + CHAIN.upper().replace(",", " ,") + " 🙏🙏"
    assert text_hash(forwarded) == text_hash(CHAIN)
    assert find_duplicate(forwarded, candidates("Listrik padam besok", CHAIN)) == 1


def test_small_edits_are_near_duplicates() -> None:
    edited = CHAIN.replace("jangan diminum", "jangan sekali-kali diminum") + " Dari grup sebelah."
    assert text_hash(edited) != text_hash(CHAIN)
    assert find_duplicate(edited, candidates("Listrik padam besok", CHAIN)) == 1


def test_templated_scams_with_another_brand_or_number_stay_apart() -> None:
    indomaret = (
        "Unggahan berisi tautan pendaftaran lowongan kerja Indomaret yang mengarah ke laman tak resmi."
    )
    hyundai = indomaret.replace("Indomaret", "Hyundai")
    other_date = CHAIN.replace("20 Maret", "25 Maret")
    assert hamming(simhash(indomaret), simhash(hyundai)) <= 12  # close enough that simhash alone would merge
    assert not similar(indomaret, hyundai)
    assert find_duplicate(hyundai, candidates(indomaret)) is None
    assert find_duplicate(other_date, candidates(CHAIN)) is None


def test_short_texts_only_match_exactly() -> None:
    assert find_duplicate("air pdam beracun", candidates("Air PDAM beracun!!")) == 0
    assert find_duplicate("air pdam tidak beracun", candidates("air pdam beracun")) is None


def test_key_tokens_are_names_numbers_and_links() -> None:
    keys = key_tokens("Transfer ke 0812-3456-7890 atau buka https://bit.ly/x . Kata Pak Jefri di Kupang.")
    assert {"0812 3456 7890", "https bit ly x", "jefri", "kupang"} <= keys
    assert "transfer" not in keys and "kata" not in keys  # capitalised only because a sentence starts


@pytest.fixture(scope="module")
def dev_texts(shared_data: Path) -> list[str]:
    with (shared_data / "factchecks" / "turnbackhoax_dev.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r[c] for r in rows for c in ("message", "claim", "summary")]


def test_no_two_different_real_texts_are_taken_for_duplicates(dev_texts: list[str]) -> None:
    """900 real texts, many from one template (job-scam summaries): not one false pair."""
    pool = candidates(*dev_texts)
    forms = [canonical(t) for t in dev_texts]
    for n, text in enumerate(dev_texts):
        others = [c for c in pool if forms[c[0]] != forms[n]]
        assert find_duplicate(text, others) is None, text


def test_most_single_edits_of_real_messages_are_caught(dev_texts: list[str]) -> None:
    rng = random.Random(7)
    messages = dev_texts[::3]
    pool = candidates(*messages)
    caught = 0
    for n, text in enumerate(messages):
        words = text.split()
        words.insert(rng.randrange(len(words) + 1), rng.choice(["banget", "loh", "ini", "😱", "cek"]))
        caught += find_duplicate(" ".join(words), pool) == n
    assert caught / len(messages) >= 0.9


@given(st.text(max_size=200))
def test_hashes_are_stable_and_fit_a_signed_bigint(text: str) -> None:
    value = simhash(text)
    assert -(2**63) <= value < 2**63
    assert value == simhash(text) and text_hash(text) == text_hash(canonical(text))
