"""A citizen's question answered from the knowledge base, in short Indonesian with citations.

The answer only repeats what trusted sources wrote and always says who wrote it and when; when no
passage is good enough it says so instead of guessing. All wording citizens see from this part is here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlmodel import Session

from knowledge_base.dates import format_date
from knowledge_base.normalize import tokens
from knowledge_base.search import PassageHit, search_passages
from knowledge_base.settings import get_settings

MAX_CITATIONS = 3
SNIPPET_CHARS = 320
# A question needs this many content words (after stop-words) before it can be answered confidently.
MIN_QUESTION_TERMS = 2

INTRO = "Menurut sumber resmi yang kami pantau:"
SOURCES = "Sumber:"
NOT_FOUND = (
    "Maaf, belum ada informasi tentang itu dari sumber resmi yang kami pantau. "
    "Kalau ini kabar yang beredar, kirimkan teksnya agar tim kami periksa."
)
TOO_SHORT = (
    "Maaf, belum ada informasi yang cocok. Coba tulis pertanyaannya lebih lengkap, "
    "misalnya: “Kapan air PDAM di Oebobo mengalir lagi?”"
)


@dataclass
class Answer:
    found: bool
    text: str
    citations: list[PassageHit] = field(default_factory=list)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def snippet(text: str, question_terms: set[str], limit: int = SNIPPET_CHARS) -> str:
    """The sentences of a passage that share most terms with the question, within `limit` characters."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if not sentences:
        return ""
    ranked = sorted(
        range(len(sentences)), key=lambda i: (-len(question_terms & set(tokens(sentences[i]))), i)
    )
    chosen: list[int] = []
    used = 0
    for i in ranked:
        if chosen and used + len(sentences[i]) + 1 > limit:
            break
        chosen.append(i)
        used += len(sentences[i]) + 1
    result = " ".join(sentences[i] for i in sorted(chosen))
    return result if len(result) <= limit else result[: limit - 1].rsplit(" ", 1)[0] + "…"


def citation_line(number: int, hit: PassageHit) -> str:
    return f"{number}. {hit.title} — {hit.outlet}, {format_date(hit.published_at)}\n{hit.url}"


def answer_question(question: str, *, session: Session) -> Answer:
    """The best passages as a short answer with citations, or an honest "not yet known"."""
    terms = set(tokens(question))
    if len(terms) < MIN_QUESTION_TERMS:
        return Answer(found=False, text=TOO_SHORT)
    threshold = get_settings().answer_min_score
    hits = [
        h for h in search_passages(question, k=MAX_CITATIONS * 2, session=session) if h.score >= threshold
    ]
    if not hits:
        return Answer(found=False, text=NOT_FOUND)
    citations: list[PassageHit] = []
    for hit in hits:  # one citation per article
        if all(c.article_id != hit.article_id for c in citations):
            citations.append(hit)
        if len(citations) == MAX_CITATIONS:
            break
    lines = [INTRO, "", snippet(citations[0].text, terms), "", SOURCES]
    lines += [citation_line(n, hit) for n, hit in enumerate(citations, start=1)]
    return Answer(found=True, text="\n".join(lines), citations=citations)
