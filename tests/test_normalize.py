"""Normalisation: Kupang Malay / chat spellings become standard Indonesian, nothing important is lost."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge_base.normalize import normalize, slang_map, stop_words, tokens


def test_kupang_malay_sentence_becomes_standard_indonesian() -> None:
    text = "Beta su dengar air PDAM sonde jalan deng baik, lu pi cek dolo!!!"
    assert normalize(text) == "saya sudah dengar air pdam tidak jalan dengan baik kamu pergi cek dulu"


def test_chat_abbreviations_are_expanded() -> None:
    assert normalize("Yg bnr aja, sy gk tau krn blm dpt info utk itu") == (
        "yang benar saja saya tidak tahu karena belum dapat informasi untuk itu"
    )
    assert normalize("katong dong kasi bantuan bgt") == "kita mereka beri bantuan sekali"


def test_stretched_letters_and_reduplication() -> None:
    assert normalize("gaaakkk bangettt") == "tidak sekali"
    assert normalize("Anak2 sm2 hati2") == "anak-anak sama-sama hati-hati"


def test_urls_numbers_and_phone_numbers_are_kept_verbatim() -> None:
    text = (
        "Cek https://bit.ly/AbC123. Hub 0812-3456-7890 / +62 812 3456 7890, "
        "Rp1.500.000 tgl 12/05/2026 jam 10:30"
    )
    out = normalize(text)
    for kept in (
        "https://bit.ly/AbC123",
        "0812-3456-7890",
        "+62 812 3456 7890",
        "1.500.000",
        "12/05/2026",
        "10:30",
    ):
        assert kept in out
    assert out.startswith("cek https://bit.ly/AbC123 hub")
    assert "rp 1.500.000 tanggal" in out


def test_accents_and_odd_unicode_do_not_split_words() -> None:
    assert normalize("İstanbul café ＣＯＶＩＤ-19") == "istanbul cafe covid-19"


def test_slang_map_is_large_and_closed_under_itself() -> None:
    """No standard word is itself a key, otherwise a second pass would change the text."""
    mapping = slang_map()
    assert len(mapping) >= 150
    for key, value in mapping.items():
        assert key == key.strip().lower() and " " not in key
        for word in re.split(r"[ -]", value):
            assert word not in mapping, f"{key} -> {value}: {word!r} is itself a key"


def test_tokens_are_stemmed_without_stop_words() -> None:
    assert tokens("Pemerintah kota membagikan bantuan sembako untuk warga yang terdampak banjir") == [
        "perintah",
        "kota",
        "bagi",
        "bantu",
        "sembako",
        "warga",
        "dampak",
        "banjir",
    ]
    assert tokens("apakah benar yg itu?") == []
    assert set(tokens("beta son tau")).isdisjoint(stop_words())


def test_tokens_keep_numbers_and_urls() -> None:
    assert tokens("Vaksin COVID-19 dosis 2 di https://kupangkota.go.id/Info") == [
        "vaksin",
        "covid-19",
        "dosis",
        "2",
        "https://kupangkota.go.id/Info",
    ]


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_normalize_is_idempotent_on_any_unicode(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip() and "  " not in once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_tokens_never_crash_and_are_normalized_terms(text: str) -> None:
    for term in tokens(text):
        assert term and " " not in term


_words = st.lists(
    st.sampled_from(["beta", "su", "dengar", "yg", "kata", "Berita", "!!", ",", "sonde"]), max_size=6
)


@settings(max_examples=150, deadline=None)
@given(
    before=_words,
    after=_words,
    host=st.from_regex(r"[a-z]{2,10}\.(go\.id|com|id)", fullmatch=True),
    path=st.from_regex(r"(/[A-Za-z0-9_-]{1,8}){0,3}", fullmatch=True),
)
def test_urls_survive_unchanged(before: list[str], after: list[str], host: str, path: str) -> None:
    url = f"https://{host}{path}"
    out = normalize(" ".join([*before, url, *after]))
    assert url in out.split(" ")


@settings(max_examples=150, deadline=None)
@given(before=_words, number=st.integers(min_value=0, max_value=10**12), grouped=st.booleans())
def test_numbers_survive_unchanged(before: list[str], number: int, grouped: bool) -> None:
    written = f"{number:,}".replace(",", ".") if grouped else str(number)
    out = normalize(" ".join([*before, written, "rupiah"]))
    assert written in out.split(" ")
