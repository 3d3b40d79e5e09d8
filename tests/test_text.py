"""HTML to clean text, and chunking into passages: what the search index and citations are built from."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge_base.text import (
    chunk_spans,
    chunk_text,
    content_hash,
    html_to_text,
    normalize_whitespace,
    words_of,
)


def test_feed_html_becomes_plain_paragraphs() -> None:
    html = (
        '<img src="https://img.antaranews.com/x.png" align="right" border="0"><p>Malisya&nbsp;menjadi '
        "wisudawan termuda.</p><p>Kedua <b>tebal</b> &ldquo;kutip&rdquo;.</p>"
        "<script>track()</script><style>p{}</style><!-- iklan -->Ekor"
    )
    assert html_to_text(html) == "Malisya menjadi wisudawan termuda.\n\nKedua tebal “kutip”.\nEkor"


def test_escaped_html_and_carriage_return_entities_are_unwrapped() -> None:
    # As in ANTARA's feed: escaped markup in <description> and &#13; line ends (feedparser unescapes once).
    once = "&lt;p&gt;Biel (ANTARA News) &amp;ndash; Petenis&#13;\nperingkat 233&lt;/p&gt;"
    text = html_to_text(once)
    assert text == "Biel (ANTARA News) – Petenis\nperingkat 233"
    assert "\r" not in text and "<" not in text and "&" not in text


def test_plain_text_is_left_alone() -> None:
    assert html_to_text("Harga BBM naik 5% & tarif angkot < Rp5.000") == (
        "Harga BBM naik 5% & tarif angkot < Rp5.000"
    )


def test_site_furniture_lines_are_dropped_but_sentences_about_editors_are_kept() -> None:
    html = (
        "<p>Editor majalah itu membantah kabar tersebut.</p><p>Baca juga: Harga cabai naik</p>"
        "<p>Editor: Budi</p><p>© 2024 ANTARA</p>"
    )
    assert html_to_text(html) == "Editor majalah itu membantah kabar tersebut."


def test_normalize_whitespace_removes_invisible_and_control_characters() -> None:
    raw = "Kota\u00a0Kupang\u200b  hari\tini\r\n\r\n\r\n\x07Air  bersih\ufeff"
    assert normalize_whitespace(raw) == "Kota Kupang hari ini\n\nAir bersih"


def test_content_hash_ignores_case_and_spacing_only() -> None:
    assert content_hash("Judul", "Isi  berita\nini") == content_hash("judul", "isi berita ini")
    assert content_hash("Judul", "Isi berita ini") != content_hash("Judul", "Isi berita itu")


def test_short_text_is_one_passage_and_empty_text_none() -> None:
    assert chunk_text("Satu kalimat pendek.", 120, 30) == ["Satu kalimat pendek."]
    assert chunk_text("   \n ", 120, 30) == []


def test_chunks_end_at_sentence_boundaries_and_overlap_by_whole_sentences() -> None:
    text = (
        "Satu dua tiga. Empat lima enam! Tujuh delapan sembilan sepuluh. Sebelas dua belas.\n"
        "Paragraf baru tanpa titik"
    )
    assert chunk_text(text, 6, 3) == [
        "Satu dua tiga. Empat lima enam!",
        "Tujuh delapan sembilan sepuluh.",
        "Sebelas dua belas.",
        "Paragraf baru tanpa titik",
    ]
    assert chunk_text("Aa bb. Cc dd. Ee ff. Gg hh.", 4, 2) == [
        "Aa bb. Cc dd.",
        "Cc dd. Ee ff.",
        "Ee ff. Gg hh.",
    ]


def test_a_sentence_longer_than_a_passage_is_cut() -> None:
    assert chunk_text("a b c d e f g h i j", 4, 2) == ["a b c d", "c d e f", "e f g h", "g h i j"]


_word = st.text(alphabet="abcdeKLMN.,!?\"'()0123456789é", min_size=1, max_size=8)
_sep = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "\t"])


@st.composite
def _texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(_word, min_size=0, max_size=400))
    return "".join(w + draw(_sep) for w in words)


@settings(max_examples=300, deadline=None)
@given(text=_texts(), max_words=st.integers(1, 60), overlap=st.integers(0, 40))
def test_chunking_loses_no_word_and_bounds_every_passage(text: str, max_words: int, overlap: int) -> None:
    words = words_of(text)
    spans = chunk_spans(words, max_words, overlap)
    if not words:
        assert spans == []
        return
    assert spans[0][0] == 0 and spans[-1][1] == len(words)
    covered = 0
    for start, end in spans:
        assert 0 < end - start <= max_words
        assert start <= covered < end  # contiguous: no gap, and every chunk adds new words
        assert covered - start <= max(overlap, 0)  # overlap never exceeds what was asked
        covered = end
    passages = chunk_text(text, max_words, overlap)
    assert [p.split() for p in passages] == [[w.text for w in words[a:b]] for a, b in spans]
    assert [w.text for w in words] == text.split()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_html_to_text_never_leaves_markup_or_control_characters(raw: str) -> None:
    html = f"<div><p>{raw}</p><script>x()</script></div>"
    text = html_to_text(html)
    assert "<script" not in text and "x()" not in text
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\r]", text)
    assert text == text.strip()
    if not re.search(r"[<&]", text):
        assert html_to_text(text) == text  # cleaning clean text changes nothing
