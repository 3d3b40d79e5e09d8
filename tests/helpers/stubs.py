"""Tiny stand-ins for the knowledge base and NLU, returning their real result types.

Used only where a test is about the core's own behaviour (persistence, idempotency, abuse handling);
the end-to-end tests use the real knowledge base and NLU client.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from bot.core import Services
from knowledge_base.answer import Answer
from knowledge_base.matching import MatchResult, VerdictCandidate
from knowledge_base.models import CitizenReport, Claim, Verdict, utcnow
from knowledge_base.search import PassageHit
from nlu.result import NluResult


def citation(title: str, outlet: str, published_at: datetime, url: str) -> PassageHit:
    """A passage as an answer cites it (title, outlet, date, link)."""
    return PassageHit(1, 1, "", title, outlet, published_at, url, score=0.9)


def stub_parse(text: str) -> NluResult:
    t = text.lower()
    if t.split()[:1] in (["halo"], ["hai"], ["pagi"]):
        return NluResult("greet", 0.95)
    if "makasih" in t or "terima kasih" in t:
        return NluResult("thanks", 0.9)
    if "?" in t or t.startswith(("jam", "kapan", "di mana")):
        return NluResult("ask_info", 0.8)
    if "hoaks" in t or "benar" in t or "katanya" in t:
        return NluResult("check_claim", 0.8)
    return NluResult("nlu_fallback", 0.3)


def stub_answer(text: str, *, session: Session) -> Answer:
    if "sampah" in text.lower():
        cit = citation(
            "Jadwal angkut sampah",
            "Pemkot Kupang",
            datetime(2026, 3, 5, tzinfo=UTC),
            "https://kupangkota.go.id/sampah",
        )
        return Answer(True, "Sampah diangkut pukul 06.00-10.00 WITA.", [cit])
    return Answer(False, "", [])


def _candidate(v: Verdict) -> VerdictCandidate:
    return VerdictCandidate.from_verdict(v, score=0.9)


def stub_match(text: str, *, session: Session) -> MatchResult:
    published = select(Verdict).where(Verdict.status == "published").order_by(col(Verdict.id))
    verdicts = session.exec(published).all()
    words = set(text.lower().split())
    scored = sorted(((len(words & set(v.claim.lower().split())), v) for v in verdicts), key=lambda x: -x[0])
    if scored and scored[0][0] >= 4:
        return MatchResult(text, "auto", _candidate(scored[0][1]), [_candidate(scored[0][1])])
    similar = [_candidate(v) for score, v in scored if score >= 2]
    if similar:
        return MatchResult(text, "suggest", None, similar)
    return MatchResult(text, "none", None, [])


def stub_report(text: str, *, session: Session, citizen_id: int | None, message_id: int | None) -> Claim:
    h = hashlib.sha256(text.lower().strip().encode()).hexdigest()
    claim = session.exec(select(Claim).where(Claim.text_hash == h, Claim.status == "new")).first()
    if claim is None:
        claim = Claim(text=text, text_hash=h)
    claim.ask_count += 1
    claim.last_asked_at = utcnow()
    session.add(claim)
    session.flush()
    assert claim.id is not None
    session.add(CitizenReport(claim_id=claim.id, citizen_id=citizen_id, message_id=message_id, text=text))
    session.flush()
    return claim


def stub_services() -> Services:
    return Services(parse=stub_parse, answer=stub_answer, match=stub_match, report=stub_report)
