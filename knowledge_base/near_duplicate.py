"""Exact and near-exact duplicate detection for forwarded chain messages, with no model involved.

A chain message is forwarded thousands of times with small edits (an emoji, "Diteruskan", a changed
name or a trailing line). Hashing a canonical form catches exact forwards; a 64-bit simhash over word
shingles catches near-exact ones in microseconds, so the bot can answer them before loading any model.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

import numpy as np

# Simhash distance that makes a candidate worth confirming word by word. On the dev CSV's 900 texts,
# one or two small edits of a message mostly stay within it; templated scams that differ by one brand
# also fall inside, which is why `similar` confirms every candidate.
MAX_DISTANCE = 12
# Share of distinct words two texts must have in common to be near-exact.
MIN_JACCARD = 0.75
# One replaced word is tolerated per this many words (a typo fixed, a town swapped in a long chain letter).
WORDS_PER_SUBSTITUTION = 15
# Below this many words only the exact hash is trusted.
MIN_SIMHASH_WORDS = 8

_FORWARD_MARKERS = re.compile(
    r"^(?:\s*(?:forwarded(?: many times)?|diteruskan(?: berkali-kali)?|fwd|fw|terusan|copas|"
    r"copy paste|dari grup sebelah)\s*[:\-]*\s*)+",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_MASK64 = (1 << 64) - 1


def canonical(text: str) -> str:
    """Lower-case words only: punctuation, emoji, spacing and forward markers do not make a new message."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _FORWARD_MARKERS.sub("", text.strip())
    return " ".join(_NON_WORD.sub(" ", text.casefold()).replace("_", " ").split())


def text_hash(text: str) -> str:
    """SHA-256 of the canonical form: equal for exact forwards."""
    return hashlib.sha256(canonical(text).encode()).hexdigest()


def word_count(text: str) -> int:
    return len(canonical(text).split())


def _features(words: list[str]) -> list[str]:
    if len(words) < 3:
        return words
    return [" ".join(words[i : i + 3]) for i in range(len(words) - 2)] + words


def simhash(text: str) -> int:
    """64-bit simhash of word unigrams and 3-shingles, as a signed int so it fits a BIGINT column."""
    features = _features(canonical(text).split())
    if not features:
        return 0
    digests = b"".join(hashlib.blake2b(f.encode(), digest_size=8).digest() for f in features)
    # Row i holds bit 63..0 of feature i's hash (big-endian bytes, most significant bit first).
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 8), axis=1)
    votes = 2 * bits.sum(axis=0, dtype=np.int64) - len(features)
    value = sum(1 << (63 - i) for i in np.flatnonzero(votes > 0).tolist())
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & _MASK64).bit_count()


_KEY_TOKEN = re.compile(r"https?://\S+|www\.\S+|\+?\d[\d\-./:]*\d|\d|[A-Z][\w'’-]+")
_SENTENCE_END = re.compile(r"[.!?:\n]\s*$")


def key_tokens(text: str) -> set[str]:
    """Names, numbers, URLs and phone numbers: the words that make two look-alike scams different ones."""
    keys: set[str] = set()
    text = _FORWARD_MARKERS.sub("", unicodedata.normalize("NFKC", text or "").strip())
    for m in _KEY_TOKEN.finditer(text):
        token = m.group()
        if token[0].isupper() and (m.start() == 0 or _SENTENCE_END.search(text[: m.start()])):
            continue  # a capital that only starts a sentence is no name
        keys.add(canonical(token))
    keys.discard("")
    return keys


_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def words_with_case(text: str) -> list[tuple[str, bool | None]]:
    """Canonical words with how they were written: True capitalised, False lower case, None at the
    start of a sentence (where a capital says nothing about the word)."""
    text = unicodedata.normalize("NFKC", text or "")
    out: list[tuple[str, bool | None]] = []
    for m in _WORD.finditer(text):
        initial = m.start() == 0 or bool(_SENTENCE_END.search(text[max(0, m.start() - 3) : m.start()]))
        written: bool | None = None if initial else m.group()[0].isupper()
        out.extend((w, written) for w in canonical(m.group()).split())
    return out


def similar(a: str, b: str) -> bool:
    """Near-exact: same canonical text, or most words shared and no name, number or link swapped for another.

    Adding or dropping a name keeps a forward the same message; replacing one (Indomaret → Hyundai in a
    templated job scam) makes another one.
    """
    wa, wb = canonical(a).split(), canonical(b).split()
    if wa == wb:
        return True
    if min(len(wa), len(wb)) < MIN_SIMHASH_WORDS:
        return False
    sa, sb = set(wa), set(wb)
    if len(sa & sb) / len(sa | sb) < MIN_JACCARD:
        return False
    if min(len(sa - sb), len(sb - sa)) > min(len(wa), len(wb)) // WORDS_PER_SUBSTITUTION:
        return False  # words replaced, not only added or dropped: likely another instance of a template
    ka, kb = key_tokens(a), key_tokens(b)
    return ka <= kb or kb <= ka


def find_duplicate(text: str, candidates: Iterable[tuple[int, str, int, str]]) -> int | None:
    """The id of the first candidate `(id, text_hash, simhash, text)` that `text` duplicates, else None.

    The exact hash wins at once; otherwise the simhash picks the few close candidates and `similar`
    confirms them, so templated scams that differ by one brand or phone number are kept apart.
    """
    qhash, qsim = text_hash(text), simhash(text)
    close: list[tuple[int, int, str]] = []
    for cid, chash, csim, ctext in candidates:
        if chash == qhash:
            return cid
        distance = hamming(qsim, csim)
        if distance <= MAX_DISTANCE:
            close.append((distance, cid, ctext))
    for _distance, cid, ctext in sorted(close):
        if similar(text, ctext):
            return cid
    return None
