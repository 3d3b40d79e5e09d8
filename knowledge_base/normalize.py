"""Text normalisation shared by search, matching and NLU.

Citizens write informal Indonesian and Kupang Malay ("beta su dengar air sonde jalan"); the knowledge
base is written in standard Indonesian. Mapping spellings first lifted dense recall@1 from 0.78 to 0.89
(MEASURED.md), so every component compares texts after `normalize`. URLs, e-mail addresses, numbers
and phone numbers are kept verbatim because they are often the very thing a hoax is about.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

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
    text = _CURRENCY.sub(r"\1 ", unicodedata.normalize("NFKC", text))  # "Rp1.500" -> "Rp 1.500"
    out: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        value = match.group()
        if kind == "url":
            out.append(value.rstrip(_URL_TRAILING))
        elif kind in ("phone", "number"):
            out.append(value)
        elif kind == "email":
            out.append(value.lower())
        else:
            lowered = _strip_marks(value.lower())
            out.extend(_normalize_word(w.group()) for w in re.finditer(_WORD, lowered))
    return " ".join(out)


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
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
    stops = stop_words()
    terms: list[str] = []
    for match in _TOKEN_RE.finditer(normalize(text)):
        term = match.group()
        if term in stops:
            continue
        if match.lastgroup != "word" or any(ch.isdigit() for ch in term):
            terms.append(term)
            continue
        # Sastrawi may split a word ("jum'at" -> "jum at"); stop-words are judged before stemming
        # so "membagikan" keeps its stem "bagi" although "bagi" alone is a stop-word.
        terms.extend(stem(term).split())
    return terms
