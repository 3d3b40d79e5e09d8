"""Telegram through the webhook route with the real PTB client talking to a local fake Bot API:
every real payload in ../shared/data/telegram, the secret header, redelivery and send failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
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
from tests.helpers.bot import FUZZ, FUZZ_JSON, SECRET

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


TEXT_UPDATE = Path("/work/shared/data/telegram/tgdocs_message_text.json")
MALFORMED = {  # bodies that pass the secret check: refused (400) or acknowledged and ignored (200)
    "list": b"[]",
    "number": b"42",
    "string": b'"x"',
    "null": b"null",
    "message is a number": b'{"update_id":4,"message":5}',
    "message without chat": b'{"update_id":5,"message":{"message_id":1,"date":1,"text":"halo"}}',
    "chat id is text": b'{"update_id":6,"message":{"message_id":1,"date":1,'
    b'"chat":{"id":"x","type":"private"},"text":"hi"}}',
    "text is a number": b'{"update_id":7,"message":{"message_id":1,"date":1,'
    b'"chat":{"id":1,"type":"private"},"text":5}}',
    "update_id is text": b'{"update_id":"8"}',
    "nested lists": b"[" * 100_000 + b"]" * 100_000,
    "nested objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_update_with_the_right_secret_is_never_a_5xx(
    client: httpx.AsyncClient, fake_telegram: FakeTelegram, body: bytes
) -> None:
    resp = await client.post("/webhooks/telegram", content=body, headers=HEADERS)
    assert resp.status_code in (200, 400)
    assert fake_telegram.sent() == []


async def test_message_with_a_lone_surrogate_is_stored_and_answered(
    client: httpx.AsyncClient, fake_telegram: FakeTelegram, session: Session
) -> None:
    data = load(TEXT_UPDATE, 8_000_101)
    data["message"]["text"] = "\ud800 halo"
    body = json.dumps(data).encode()  # ASCII JSON with the escape "\ud800": valid JSON, invalid text
    for _ in range(2):  # the redelivery finds it stored and answered, not a second failure
        assert (await client.post("/webhooks/telegram", content=body, headers=HEADERS)).status_code == 200
    stored = session.exec(select(InboundMessage).where(InboundMessage.external_id == "u8000101")).one()
    assert stored.text == "\ufffd halo"
    assert len(fake_telegram.sent()) == 1


async def test_body_over_the_cap_is_refused_with_413(
    client: httpx.AsyncClient, fake_telegram: FakeTelegram
) -> None:
    data = load(TEXT_UPDATE, 8_000_102)
    data["message"]["text"] = "x" * (get_settings().webhook_max_bytes + 1)
    resp = await client.post("/webhooks/telegram", content=json.dumps(data).encode(), headers=HEADERS)
    assert resp.status_code == 413 and fake_telegram.sent() == []

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(80):
            yield b" " * 256 * 1024

    resp = await client.post("/webhooks/telegram", content=chunks(), headers=HEADERS)
    assert resp.status_code == 413


def _update(uid: int, message: object) -> dict:
    return {"update_id": uid, "message": message}


@FUZZ
@given(st.one_of(FUZZ_JSON, st.builds(_update, st.integers(0, 2**40), FUZZ_JSON)), st.binary(max_size=64))
async def test_any_body_with_the_right_secret_is_never_a_5xx(
    client: httpx.AsyncClient, data: object, noise: bytes
) -> None:
    for body in (json.dumps(data).encode(), noise):
        resp = await client.post("/webhooks/telegram", content=body, headers=HEADERS)
        assert resp.status_code < 500
