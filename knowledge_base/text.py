"""Feed HTML to clean text, and clean text to passages: the units the knowledge base searches and cites.

Feeds carry HTML fragments (`content:encoded`, escaped descriptions, `&#13;` line ends, images, share
buttons). A full-page extractor such as trafilatura throws short fragments away, so fragments are walked
with lxml instead, keeping paragraph breaks so chunking can respect them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import lxml.html
from lxml import etree

# Elements whose text is never article text.
_DROP_TAGS = ("script", "style", "noscript", "iframe", "object", "embed", "svg", "form", "button", "figure")
# Elements that end a line or paragraph when turned into text.
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table"}
    | {"tr", "section", "article", "header", "footer", "hr", "dd", "dt"}
)
_TAG_LIKE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>")
_ENTITY_LIKE = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# Lines that are site furniture rather than the story ("Baca juga: ...", "Editor: ...").
_BOILERPLATE = re.compile(
    r"^(baca juga|simak juga|lihat juga)\b.{0,200}$"
    r"|^(editor|pewarta|penulis|sumber foto|copyright)\s*:.{0,120}$|^©.{0,120}$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_SENTENCE_START = re.compile(r"^[\"'“‘(\[]*[A-Z0-9À-Þ]")


def normalize_whitespace(text: str) -> str:
    """NFKC, no invisible or control characters, single spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _append_text(el: etree._Element, parts: list[str]) -> None:
    """Depth-first text of `el` (without its tail), a line break around each block element."""
    block = isinstance(el.tag, str) and el.tag.lower() in _BLOCK_TAGS
    if block:
        parts.append("\n")
    if isinstance(el.tag, str) and el.text:  # a comment's text is not content
        parts.append(el.text)
    for child in el:
        _append_text(child, parts)
        if child.tail:
            parts.append(child.tail)
    if block:
        parts.append("\n")


def _fragment_text(html: str) -> str:
    """Text of an HTML fragment with block elements turned into line breaks."""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return html
    etree.strip_elements(root, *_DROP_TAGS, with_tail=False)
    parts: list[str] = []
    _append_text(root, parts)
    return "".join(parts)


def html_to_text(html: str) -> str:
    """Readable text of a feed's HTML (or plain text); HTML escaped twice over is unwrapped too."""
    text = html or ""
    for _ in range(3):  # escaped HTML shows up as tags/entities again after one pass
        if not (_TAG_LIKE.search(text) or _ENTITY_LIKE.search(text)):
            break
        text = _fragment_text(text)
    text = normalize_whitespace(text)
    kept = [line for line in text.split("\n") if not _BOILERPLATE.match(line)]
    return normalize_whitespace("\n".join(kept))


def content_hash(*parts: str) -> str:
    """SHA-256 of the case- and whitespace-folded text, so trivial re-formatting is still a duplicate."""
    folded = " ".join(" ".join(p.split()).casefold() for p in parts if p)
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Word:
    text: str
    starts_sentence: bool


def words_of(text: str) -> list[Word]:
    """Whitespace-separated words, each knowing whether a sentence (or paragraph) starts with it."""
    out: list[Word] = []
    last_end = 0
    for match in re.finditer(r"\S+", text):
        gap = text[last_end : match.start()]
        word = match.group()
        starts = (
            not out
            or "\n" in gap
            or (_SENTENCE_END.search(out[-1].text) is not None and _SENTENCE_START.match(word) is not None)
        )
        out.append(Word(word, starts))
        last_end = match.end()
    return out


def chunk_spans(words: list[Word], max_words: int, overlap_words: int) -> list[tuple[int, int]]:
    """Half-open word ranges covering every word in order, each at most `max_words` long.

    A chunk ends at the last sentence boundary in reach; the next one restarts at a sentence boundary
    within the last `overlap_words` words (the earliest from which a whole next sentence still fits), so
    a fact split across two chunks is whole in one. Only a sentence longer than a chunk is cut.
    """
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    n = len(words)
    overlap = max(0, min(overlap_words, max_words // 2))
    bounds = [i for i, w in enumerate(words) if w.starts_sentence and i > 0] + [n]

    def last_bound_in(lo: int, hi: int) -> int | None:
        """The largest boundary b with lo < b <= hi."""
        i = bisect_right(bounds, hi) - 1
        return bounds[i] if i >= 0 and bounds[i] > lo else None

    spans: list[tuple[int, int]] = []
    start = covered = 0
    while covered < n:
        end = last_bound_in(covered, start + max_words) or min(start + max_words, n)
        spans.append((start, end))
        covered = end
        if end == n:
            break
        restarts = bounds[bisect_left(bounds, max(end - overlap, start + 1)) : bisect_right(bounds, end)]
        fitting = [r for r in restarts if last_bound_in(covered, r + max_words) is not None]
        start = (fitting or restarts or [max(end - overlap, start + 1)])[0]
    return spans


def chunk_text(text: str, max_words: int, overlap_words: int) -> list[str]:
    """Passages of a text (single-spaced), in order; an empty text has none."""
    words = words_of(text)
    return [" ".join(w.text for w in words[a:b]) for a, b in chunk_spans(words, max_words, overlap_words)]
