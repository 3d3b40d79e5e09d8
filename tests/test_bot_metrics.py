"""The bot's metrics move as messages flow: the real Telegram and WhatsApp webhook routes of the
composed app, the real PTB client against the fake Bot API, the real NLU client with Rasa down (its
breaker opens), the knowledge-base stand-ins for deterministic decisions, the notifier's failures;
counted values read back from a real `/metrics` scrape (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut

import bot.web
from bot.core import BotCore, Services
from bot.delivery import PermanentError, TransientError
from bot.metrics_hooks import failure_cause
from bot.outbox import Notifier
from bot.runtime import get_core, get_whatsapp
from bot.settings import get_settings as bot_settings_cache
from bot.telegram import TelegramChannel, TelegramNotifier
from bot.whatsapp import WhatsAppClient
from kabashoax.web import create_app
from knowledge_base.db import get_session
from knowledge_base.models import Citizen, Notification, Verdict
from knowledge_base.settings import get_settings
from nlu.client import NluClient
from nlu.result import NluResult
from nlu.settings import NluSettings
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.bot import SECRET, WA_SECRET, bot_settings
from tests.helpers.db import reusing
from tests.helpers.procs import Samples, free_port, telegram_update, total
from tests.helpers.stubs import stub_answer, stub_match, stub_parse, stub_report

TOKEN = "scrape-" + "m" * 24
BLOCKED = 5550008888
WHATSAPP = Path("/work/shared/data/whatsapp")


class StubFallback:
    """The in-app classifier's place, with the stand-in rules (the real one needs the e5 model)."""

    def parse(self, text: str) -> NluResult:
        return stub_parse(text)


@pytest.fixture
def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram().start()
    server.blocked_chats.add(BLOCKED)
    yield server
    server.stop()


@pytest.fixture
async def wired(
    session: Session, fake: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, BotCore, Bot]]:
    for name, value in {
        "KABASHOAX_DATA_DIR": str(tmp_path / "var"),
        "METRICS_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "WHATSAPP_APP_SECRET": WA_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    get_settings.cache_clear()
    bot_settings_cache.cache_clear()
    dead_rasa = NluSettings(
        RASA_URL=f"http://127.0.0.1:{free_port()}", NLU_BREAKER_FAILURES=1, NLU_BREAKER_COOLDOWN_S=600
    )
    nlu = NluClient(dead_rasa, fallback=StubFallback)  # type: ignore[arg-type]
    services = Services(parse=nlu.parse_sync, answer=stub_answer, match=stub_match, report=stub_report)
    core = BotCore(services, bot_settings(), reusing(session))
    telegram = Bot(fake.token, base_url=fake.base_url)
    await telegram.initialize()
    channel = TelegramChannel(telegram, core)

    async def get_channel() -> TelegramChannel:
        return channel

    graph = httpx.MockTransport(lambda r: httpx.Response(200, json={"messages": [{"id": "wamid.out"}]}))
    app: FastAPI = create_app()
    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[get_core] = lambda: core
    app.dependency_overrides[bot.web.telegram_provider] = lambda: get_channel
    app.dependency_overrides[get_whatsapp] = lambda: WhatsAppClient(
        bot_settings(), httpx.AsyncClient(transport=graph)
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kabashoax") as client:
        yield client, core, telegram
    await telegram.shutdown()
    nlu.close()
    get_settings.cache_clear()
    bot_settings_cache.cache_clear()


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def telegram(
    client: httpx.AsyncClient, uid: int, chat: int, text: str, *, forwarded: bool = False
) -> int:
    update = telegram_update(uid, chat, text, forwarded=forwarded)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    return (await client.post("/webhooks/telegram", json=update, headers=headers)).status_code


def published(session: Session) -> Verdict:
    verdict = Verdict(
        claim="Vaksin campak di Kupang mengandung chip pelacak",
        rating="HOAKS",
        summary="Dinas Kesehatan memastikan vaksin campak tidak mengandung chip apa pun.",
        url="https://cekfakta.example/vaksin-chip",
        published_at=datetime(2026, 2, 1, tzinfo=UTC),
        status="published",
    )
    session.add(verdict)
    session.commit()
    return verdict


async def test_message_counters_move_through_the_real_webhooks(
    wired: tuple[httpx.AsyncClient, BotCore, Bot], session: Session, fake: FakeTelegram
) -> None:
    client, _, _ = wired
    published(session)
    chat = 5550007001
    before = await scrape(client)
    sent = [
        ("halo", False),  # NLU (Rasa down: breaker opens, fallback answers) -> greet
        ("/tanya jam buang sampah di Oebobo?", False),  # answered from the knowledge base
        ("/tanya kapan pasar Inpres buka?", False),  # not found
        ("Vaksin campak di Kupang mengandung chip pelacak, sebarkan", True),  # the verdict, at once
        ("Vaksin campak bikin anak demam tinggi", True),  # similar verdicts offered
        ("Besok semua sekolah diliburkan karena badai besar", True),  # unknown: a ticket
    ]
    for n, (text, forwarded) in enumerate(sent):
        assert await telegram(client, 100 + n, chat, text, forwarded=forwarded) == 200
    assert await telegram(client, 200, BLOCKED, "halo") == 500  # 403 from Telegram: redelivered later
    failed_status = (WHATSAPP / "wa_status_failed.json").read_bytes()
    signature = "sha256=" + hmac.new(WA_SECRET.encode(), failed_status, hashlib.sha256).hexdigest()
    wa = await client.post(
        "/webhooks/whatsapp",
        content=failed_status,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )
    assert wa.status_code == 200
    assert len([m for m in fake.sent() if int(m["chat_id"]) == chat]) >= len(sent)

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("kabashoax_messages_received_total", channel="telegram") == len(sent) + 1
    assert moved("kabashoax_messages_received_total", channel="telegram", intent="greet") == 2
    assert moved("kabashoax_messages_received_total", channel="telegram", intent="command") == 2
    assert moved("kabashoax_messages_sent_total", channel="telegram", intent="greet") >= 1  # not the blocked
    assert moved("kabashoax_messages_sent_total", channel="telegram") >= len(sent)
    assert moved("kabashoax_message_handling_seconds_count", channel="telegram") == len(sent) + 1
    assert moved("kabashoax_answers_total", found="true") == 1
    assert moved("kabashoax_answers_total", found="false") == 1
    for decision in ("auto", "suggest", "none"):
        assert moved("kabashoax_match_decisions_total", decision=decision) == 1, decision
    assert moved("kabashoax_delivery_failures_total", channel="telegram", cause="blocked") == 1
    assert moved("kabashoax_delivery_failures_total", channel="whatsapp", cause="reported_failed") == 1
    assert total(after, "kabashoax_nlu_breaker_open") == 1
    assert moved("kabashoax_nlu_parsed_total", source="fallback") == 2


def notify(session: Session, verdict: Verdict, address: int, tag: str) -> None:
    """A pending verdict notification for a Telegram citizen."""
    citizen = Citizen(channel="telegram", pseudonym=f"metrics-{tag}-{verdict.id}", address=str(address))
    session.add(citizen)
    session.flush()
    session.add(
        Notification(
            dedupe_key=f"metrics:{verdict.id}:{tag}",
            citizen_id=citizen.id,
            channel="telegram",
            kind="verdict",
            verdict_id=verdict.id,
        )
    )
    session.commit()


async def test_notifier_failures_are_counted_by_cause(
    wired: tuple[httpx.AsyncClient, BotCore, Bot], session: Session, fake: FakeTelegram
) -> None:
    client, _, telegram_bot = wired
    verdict = published(session)
    notifier = Notifier({"telegram": TelegramNotifier(telegram_bot)}, bot_settings(), reusing(session))
    key = "kabashoax_delivery_failures_total"
    before = await scrape(client)
    notify(session, verdict, BLOCKED, "blocked")
    notify(session, verdict, 5550007002, "ok")
    assert await notifier.run_once() == 2
    middle = await scrape(client)
    assert total(middle, key, channel="telegram", cause="blocked") - total(before, key, cause="blocked") == 1
    assert total(middle, key, cause="rate_limited") == total(before, key, cause="rate_limited")

    notify(session, verdict, 5550007003, "later")
    fake.fail_429 = 1  # Telegram's flood control refuses the next send
    assert await notifier.run_once() == 1
    after = await scrape(client)
    assert (
        total(after, key, channel="telegram", cause="rate_limited") - total(middle, key, cause="rate_limited")
        == 1
    )
    assert total(after, key, cause="blocked") == total(middle, key, cause="blocked")


def test_failure_causes_are_short_bounded_labels() -> None:
    def chained(outer: Exception, inner: Exception) -> Exception:
        try:
            raise outer from inner
        except Exception as exc:
            return exc

    request = httpx.Request("POST", "https://graph.test/v21.0/1/messages")
    assert failure_cause(chained(PermanentError("x"), BadRequest("Chat not found"))) == "bad_request"
    assert failure_cause(chained(TransientError("x"), TimedOut())) == "timeout"
    assert failure_cause(chained(TransientError("x"), NetworkError("Bad Gateway"))) == "network"
    assert (
        failure_cause(chained(TransientError("x"), httpx.ConnectError("refused", request=request)))
        == "network"
    )
    assert failure_cause(TransientError("whatsapp: HTTP 503")) == "server_error"
    assert failure_cause(PermanentError("whatsapp: HTTP 400 131026")) == "refused"
    assert failure_cause(ValueError("?")) == "other"
