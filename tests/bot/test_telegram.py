"""Telegram through the webhook route with the real PTB client talking to a local fake Bot API:
every real payload in ../shared/data/telegram, the secret header, redelivery and send failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import Session, select
from telegram import Bot

import bot.web
from bot import messages
from bot.core import BotCore
from bot.runtime import get_core
from bot.settings import get_settings
from bot.telegram import TelegramChannel
from knowledge_base.models import InboundMessage
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.bot import SECRET

PAYLOADS = sorted((Path("/work/shared/data") / "telegram").glob("*.json"))
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


@pytest.fixture
def env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-token")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def client(
    core: BotCore, fake_telegram: FakeTelegram, env_secret: None
) -> AsyncIterator[httpx.AsyncClient]:
    tg_bot = Bot(fake_telegram.token, base_url=fake_telegram.base_url)
    await tg_bot.initialize()
    channel = TelegramChannel(tg_bot, core)

    async def getter() -> TelegramChannel:
        return channel

    app = FastAPI()
    app.include_router(bot.web.router)
    app.dependency_overrides[get_core] = lambda: core
    app.dependency_overrides[bot.web.telegram_provider] = lambda: getter
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await tg_bot.shutdown()


def load(path: Path, update_id: int) -> dict:
    """The real payload; only update_id is made unique (several samples share 10000)."""
    data = json.loads(path.read_text())
    data["update_id"] = update_id
    return data


@pytest.mark.parametrize("path", PAYLOADS, ids=[p.stem for p in PAYLOADS])
async def test_every_real_payload_is_handled(
    path: Path, client: httpx.AsyncClient, fake_telegram: FakeTelegram, session: Session
) -> None:
    uid = 7_000_000 + PAYLOADS.index(path)
    data = load(path, uid)
    resp = await client.post("/webhooks/telegram", json=data, headers=HEADERS)
    assert resp.status_code == 200
    sent = fake_telegram.sent()
    if "my_chat_member" in data:  # not a message: nothing stored, nothing said
        assert sent == []
        return
    assert len(sent) >= 1 and all(m["text"].strip() for m in sent)
    stored = session.exec(select(InboundMessage).where(InboundMessage.external_id == f"u{uid}")).one()
    assert stored.replied_at is not None and stored.error is None
    if "callback_query" in data:
        assert [c.method for c in fake_telegram.calls].count("answerCallbackQuery") == 1
        assert sent[0]["text"] == messages.STALE_BUTTON  # a button we never sent
    msg = data.get("message") or data.get("edited_message") or {}
    if "voice" in msg:
        assert sent[0]["text"] == messages.MEDIA["voice"]
    if "photo" in msg and "caption" not in msg:
        assert sent[0]["text"] == messages.MEDIA["photo"]
    if msg.get("text") == "/start":
        assert sent[0]["text"].startswith("Halo!") and sent[0]["reply_markup"]["inline_keyboard"]


async def test_wrong_or_missing_secret_is_refused(
    client: httpx.AsyncClient, fake_telegram: FakeTelegram
) -> None:
    data = load(PAYLOADS[-1], 123)
    assert (await client.post("/webhooks/telegram", json=data)).status_code == 403
    bad = {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}
    assert (await client.post("/webhooks/telegram", json=data, headers=bad)).status_code == 403
    assert fake_telegram.sent() == []


async def test_redelivered_update_is_answered_once(
    client: httpx.AsyncClient, fake_telegram: FakeTelegram
) -> None:
    data = load(Path("/work/shared/data/telegram/tgdocs_message_text.json"), 8_000_001)
    for _ in range(3):
        assert (await client.post("/webhooks/telegram", json=data, headers=HEADERS)).status_code == 200
    assert len(fake_telegram.sent()) == 1


async def test_failed_send_makes_telegram_retry_and_the_stored_reply_goes_out(
    client: httpx.AsyncClient, fake_telegram: FakeTelegram, core: BotCore
) -> None:
    data = load(Path("/work/shared/data/telegram/tgdocs_message_text.json"), 8_000_002)
    fake_telegram.fail_429 = 1
    with pytest.raises(Exception, match="Flood control"):  # the route fails → Telegram gets a 5xx
        await client.post("/webhooks/telegram", json=data, headers=HEADERS)
    asked: list[str] = []
    core.services.parse = lambda text: asked.append(text)  # type: ignore[assignment,return-value]
    assert (await client.post("/webhooks/telegram", json=data, headers=HEADERS)).status_code == 200
    assert len(fake_telegram.sent()) == 1 and fake_telegram.sent()[0]["text"].startswith("Halo!")
    assert asked == []


async def test_malformed_body_is_a_400(client: httpx.AsyncClient) -> None:
    resp = await client.post("/webhooks/telegram", content=b"{not json", headers=HEADERS)
    assert resp.status_code == 400
