"""Fixtures of the bot tests: a core on the real databases, the fake Bot API, small KB stand-ins.

`stub_services` are deliberately tiny in-test implementations of the knowledge base and NLU used
only where a test is about the core's own behaviour (persistence, idempotency, abuse handling);
the end-to-end tests use the real knowledge base and NLU client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.core import BotCore, Services, session_from
from bot.settings import BotSettings
from knowledge_base.models import Citizen, CitizenReport, Claim, Verdict, utcnow
from tests.bot.fake_telegram import FakeTelegram

SECRET = "test-webhook-secret"
WA_SECRET = "test_app_secret_not_real"


@dataclass
class StubNlu:
    intent: str
    confidence: float
    source: str = "stub"
    ranking: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StubCitation:
    title: str
    outlet: str
    published_at: datetime
    url: str


@dataclass
class StubAnswer:
    found: bool
    text: str
    citations: list[StubCitation]


@dataclass
class StubCandidate:
    verdict_id: int
    claim: str
    rating: str
    summary: str
    url: str | None
    published_at: datetime | None
    score: float = 0.9


@dataclass
class StubMatch:
    query: str
    decision: str
    verdict: StubCandidate | None
    candidates: list[StubCandidate]


def stub_parse(text: str) -> StubNlu:
    t = text.lower()
    if t.split()[:1] in (["halo"], ["hai"], ["pagi"]):
        return StubNlu("greet", 0.95)
    if "makasih" in t or "terima kasih" in t:
        return StubNlu("thanks", 0.9)
    if "?" in t or t.startswith(("jam", "kapan", "di mana")):
        return StubNlu("ask_info", 0.8)
    if "hoaks" in t or "benar" in t or "katanya" in t:
        return StubNlu("check_claim", 0.8)
    return StubNlu("nlu_fallback", 0.3)


def stub_answer(text: str, *, session: Session) -> StubAnswer:
    if "sampah" in text.lower():
        cit = StubCitation(
            "Jadwal angkut sampah",
            "Pemkot Kupang",
            datetime(2026, 3, 5, tzinfo=UTC),
            "https://kupangkota.go.id/sampah",
        )
        return StubAnswer(True, "Sampah diangkut pukul 06.00-10.00 WITA.", [cit])
    return StubAnswer(False, "", [])


def _candidate(v: Verdict) -> StubCandidate:
    return StubCandidate(v.id, v.claim, v.rating, v.summary, v.url, v.published_at)


def stub_match(text: str, *, session: Session) -> StubMatch:
    verdicts = session.exec(select(Verdict).where(Verdict.status == "published").order_by(Verdict.id)).all()
    words = set(text.lower().split())
    scored = sorted(((len(words & set(v.claim.lower().split())), v) for v in verdicts), key=lambda x: -x[0])
    if scored and scored[0][0] >= 4:
        return StubMatch(text, "auto", _candidate(scored[0][1]), [_candidate(scored[0][1])])
    similar = [_candidate(v) for score, v in scored if score >= 2]
    if similar:
        return StubMatch(text, "suggest", None, similar)
    return StubMatch(text, "none", None, [])


def stub_report(text: str, *, session: Session, citizen_id: int | None, message_id: int | None) -> Claim:
    h = hashlib.sha256(text.lower().strip().encode()).hexdigest()
    claim = session.exec(select(Claim).where(Claim.text_hash == h, Claim.status == "new")).first()
    if claim is None:
        claim = Claim(text=text, text_hash=h)
    claim.ask_count += 1
    claim.last_asked_at = utcnow()
    session.add(claim)
    session.flush()
    session.add(CitizenReport(claim_id=claim.id, citizen_id=citizen_id, message_id=message_id, text=text))
    session.flush()
    return claim


def stub_services() -> Services:
    return Services(parse=stub_parse, answer=stub_answer, match=stub_match, report=stub_report)


def bot_settings(**overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "WHATSAPP_APP_SECRET": WA_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify-me",
        "WHATSAPP_ACCESS_TOKEN": "wa-token",
        "WHATSAPP_PHONE_NUMBER_ID": "1122334455667",
        "WHATSAPP_API_BASE_URL": "http://graph.test/v21.0",
        "BOT_RATE_LIMIT": "1000/minute",
        "BOT_NOTIFY_BACKOFF_BASE_S": 0.0,
        "BOT_NOTIFY_LEASE_S": 30.0,
    }
    values.update(overrides)
    return BotSettings(**values)


@pytest.fixture
def settings() -> BotSettings:
    return bot_settings()


@pytest.fixture
def core(session: Session, settings: BotSettings) -> BotCore:
    return BotCore(stub_services(), settings, session_from(session))


@pytest.fixture
def verdict(session: Session) -> Verdict:
    v = Verdict(
        claim="Vaksin campak di Kupang mengandung chip pelacak",
        rating="HOAKS",
        summary="Dinas Kesehatan memastikan vaksin campak tidak mengandung chip apa pun.",
        url="https://cekfakta.example/vaksin-chip",
        published_at=datetime(2026, 2, 1, tzinfo=UTC),
        status="published",
    )
    session.add(v)
    session.commit()
    return v


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


def citizen_of(session: Session, channel: str) -> list[Citizen]:
    return list(session.exec(select(Citizen).where(Citizen.channel == channel)).all())
