"""Text normalisation shared by search, matching and NLU.

Citizens write informal Indonesian and Kupang Malay ("beta su dengar air sonde jalan"); the knowledge
base is written in standard Indonesian. Mapping spellings first lifted dense recall@1 from 0.78 to 0.89
(MEASURED.md), so every component compares texts after `normalize`. URLs, e-mail addresses, numbers
and phone numbers are kept verbatim because they are often the very thing a hoax is about.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from Sastrawi.Stemmer.StemmerFactory import StemmerFactory
from Sastrawi.StopWordRemover.StopWordRemoverFactory import StopWordRemoverFactory

SLANG_FILE = Path(__file__).resolve().parent / "slang.yaml"

# Order matters: the first alternative that matches at a position wins.
_URL = r"(?:https?://|www\.)[^\s<>\"]+"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_PHONE = r"(?:\+62|\b0)8\d{1,3}(?:[ -]\d{3,5}){1,3}\b"
_NUMBER = r"\+?\d+(?:[.,:/-]\d+)*(?![^\W_])"
_WORD = r"[^\W_]+(?:['’-][^\W_]+)*"
_WORD_RE = re.compile(_WORD)
_TOKEN_RE = re.compile(
    f"(?P<url>{_URL})|(?P<email>{_EMAIL})|(?P<phone>{_PHONE})|(?P<number>{_NUMBER})|(?P<word>{_WORD})"
)
_URL_TRAILING = ".,;:!?)]}'\"’”"
_REPEATED_LETTER = re.compile(r"([^\W\d_])\1{2,}")
_REDUPLICATED = re.compile(r"([^\W\d_]{2,})2")
_CURRENCY = re.compile(r"(?i)\b(rp|idr|usd)\.?\s*(?=\d)")
# Chat particles that carry no meaning for retrieval, on top of Sastrawi's stop-word list.
_EXTRA_STOP_WORDS = frozenset({"sih", "deh", "kah", "lah", "yah", "ya", "kok", "kan", "nya", "oke", "halo"})


@lru_cache(maxsize=1)
def slang_map() -> dict[str, str]:
    """The maintained spelling map (`slang.yaml`), loaded once."""
    data = yaml.safe_load(SLANG_FILE.read_text(encoding="utf-8"))
    return {str(k).lower(): str(v).lower() for k, v in data.items()}


def _strip_marks(word: str) -> str:
    """Drop combining marks ("é" -> "e", "İ".lower() -> "i") so accents never split or fork a word."""
    decomposed = unicodedata.normalize("NFKD", word)
    return unicodedata.normalize("NFKC", "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn"))


def _normalize_word(word: str) -> str:
    word = _REPEATED_LETTER.sub(r"\1", word)
    mapping = slang_map()
    if word in mapping:
        return mapping[word]
    redup = _REDUPLICATED.fullmatch(word)
    if redup:  # "anak2" -> "anak-anak", "sm2" -> "sama-sama"
        base = mapping.get(redup.group(1), redup.group(1))
        return f"{base}-{base}" if " " not in base else word
    return word


def normalize(text: str) -> str:
    """Lower-cased standard Indonesian with punctuation noise removed and single spaces.

    Idempotent: `normalize(normalize(t)) == normalize(t)` for any text.
    """
    return " ".join(value for _, value in _pieces(text))


def _pieces(text: str) -> Iterator[tuple[bool, str]]:
    """(is_word, normalised piece) in text order; URLs, e-mails, numbers and phones are not words."""
    text = _CURRENCY.sub(r"\1 ", unicodedata.normalize("NFKC", text))  # "Rp1.500" -> "Rp 1.500"
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        value = match.group()
        if kind == "url":
            yield False, value.rstrip(_URL_TRAILING)
        elif kind in ("phone", "number"):
            yield False, value
        elif kind == "email":
            yield False, value.lower()
        else:
            for word in _normalize_word_token(value).split(" "):
                if word:
                    yield True, word


@lru_cache(maxsize=200_000)
def _normalize_word_token(value: str) -> str:
    """One word as written -> its standard form(s); cached because chat and news reuse few words."""
    lowered = value.lower() if value.isascii() else _strip_marks(value.lower())
    return " ".join(_normalize_word(w.group()) for w in _WORD_RE.finditer(lowered))


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return StemmerFactory().create_stemmer()


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """Sastrawi's Indonesian stop-words plus chat particles."""
    return frozenset(StopWordRemoverFactory().get_stop_words()) | _EXTRA_STOP_WORDS


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Sastrawi stem of one word, cached: Sastrawi costs ~0.5 ms per uncached word."""
    return _stemmer().stem(word) or word


def tokens(text: str) -> list[str]:
    """Terms for lexical search: normalised, stemmed words without stop-words; numbers/URLs verbatim."""
    terms: list[str] = []
    for is_word, value in _pieces(text):
        if is_word:
            terms.extend(_word_terms(value))
        elif value not in stop_words():
            terms.append(value)
    return terms


@lru_cache(maxsize=200_000)
def _word_terms(word: str) -> tuple[str, ...]:
    """Stop-words are judged before stemming, so "membagikan" keeps its stem "bagi" although "bagi"
    alone is a stop-word; Sastrawi may split a word ("jum'at" -> "jum at")."""
    if word in stop_words():
        return ()
    if any(ch.isdigit() for ch in word):
        return (word,)
    return tuple(stem(word).split())
