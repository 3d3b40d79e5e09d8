"""Digests through the notifier, as subscribers and the city's channel receive them: the real PTB client
against the fake Bot API (one message each with its inline buttons, channel posts, 429s across a batch,
broadcast pace, a process killed mid-digest), WhatsApp through a fake Graph API (free text inside the
24-hour window, the approved template outside), the unsubscribe button and /berhenti, and verdicts that
a large digest never holds up. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import Session, select
from telegram import Bot

import bot.web
from bot import messages
from bot.citizens import pseudonym
from bot.core import BotCore
from bot.delivery import ChannelSender, Notice, Recipient, RetryLater, TransientError
from bot.outbox import Notifier
from bot.runtime import get_core, get_whatsapp
from bot.settings import get_settings
from bot.telegram import TelegramChannel, TelegramNotifier
from bot.whatsapp import WhatsAppClient
from knowledge_base import digest_render, digests
from knowledge_base.db import engine_for
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import Citizen, Digest, Notification, OutboxStatus, Verdict, utcnow
from knowledge_base.verdicts import publish_verdict
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.bot import SECRET, WA_SECRET, bot_settings
from tests.helpers.db import reusing
from tests.helpers.graph import Graph
from tests.helpers.notifier import start_notifier, statuses
from tests.helpers.wait import eventually, wait_until

BASE = "https://cekfakta.kupangkota.go.id"
CHANNEL = "@kabarcekfaktakupang"
CLAIMS = [
    ("Air PDAM Kupang dicampur racun tikus mulai malam ini", "HOAKS"),
    ("Jembatan Liliba ditutup permanen mulai besok", "SALAH"),
    ("Lowongan kerja tim dapur MBG lewat tautan pendaftaran", "PENIPUAN"),
]


@pytest.fixture(autouse=True)
def digest_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    monkeypatch.delenv("TELEGRAM_CHANNEL_ID", raising=False)
    monkeypatch.delenv("TELEGRAM_CHANNEL_POST_VERDICTS", raising=False)
    get_digest_settings.cache_clear()
    yield monkeypatch
    get_digest_settings.cache_clear()


def channel_env(monkeypatch: pytest.MonkeyPatch, *, verdicts: bool = False) -> None:
    monkeypatch.setenv("TELEGRAM_CHANNEL_ID", CHANNEL)
    monkeypatch.setenv("TELEGRAM_CHANNEL_POST_VERDICTS", "true" if verdicts else "false")
    get_digest_settings.cache_clear()


def week(session: Session) -> list[Verdict]:
    """This week's verdicts, as the fact team published them (most asked first in a draft)."""
    out = []
    for n, (claim, rating) in enumerate(CLAIMS):
        v = Verdict(
            claim=claim,
            rating=rating,
            summary=f"Pemkot Kupang membantah kabar ini. Sumber resmi tidak memuatnya ({n}).",
            status="published",
            published_at=utcnow() - timedelta(days=1, hours=n),
        )
        session.add(v)
        out.append(v)
    session.flush()
    return out


def subscribers(session: Session, n: int, channel: str = "telegram", **fields: Any) -> list[Citizen]:
    """`n` subscribed citizens with chat ids (or phone numbers) of this test only, under the pseudonyms the
    bot gives them (so their messages reach these rows)."""
    base = int(uuid.uuid4().int % 10**9) * 1000
    prefix = "628" if channel == "whatsapp" else ""
    values = {"subscribed_digest": True, **fields}
    key = bot_settings().pseudonym_key
    addresses = [f"{prefix}{base + i}" for i in range(n)]
    people = [
        Citizen(channel=channel, pseudonym=pseudonym(channel, a, key), address=a, **values) for a in addresses
    ]
    session.add_all(people)
    session.flush()
    return people


def publish(session: Session) -> int:
    d = digests.create_draft(utcnow() - timedelta(days=7), utcnow(), session=session, actor_id=None)
    digests.publish(d.id or 0, session=session, actor_id=None, via="test")
    session.commit()
    return d.id or 0


def expected(session: Session, digest_id: int, *, channel: bool = False) -> digest_render.TelegramMessage:
    """What the console previewed for this digest."""
    return digest_render.telegram(
        digests.view(session.get_one(Digest, digest_id), session=session), channel=channel
    )


def to_chat(fake: FakeTelegram, chat: int | str) -> list[dict[str, Any]]:
    return [m for m in fake.sent() if str(m["chat_id"]) == str(chat)]


def rows(session: Session, digest_id: int) -> list[Notification]:
    session.expire_all()
    return list(session.exec(select(Notification).where(Notification.digest_id == digest_id)).all())


async def telegram_notifier(fake: FakeTelegram, session: Session, **settings: Any) -> Notifier:
    tg = Bot(fake.token, base_url=fake.base_url)
    await tg.initialize()
    senders: dict[str, ChannelSender] = {"telegram": TelegramNotifier(tg)}
    return Notifier(senders, bot_settings(**settings), reusing(session))


async def drain(notifier: Notifier) -> None:
    while await notifier.run_once():
        pass


def buttons(markup: dict[str, Any]) -> list[dict[str, str]]:
    return [b for row in markup["inline_keyboard"] for b in row]


# --------------------------------------------------------------------------- Telegram


async def test_each_subscriber_gets_one_message_with_the_buttons_and_the_channel_one_post(
    session: Session, fake_telegram: FakeTelegram, digest_env: pytest.MonkeyPatch
) -> None:
    channel_env(digest_env)
    verdicts = week(session)
    people = subscribers(session, 5)
    digest_id = publish(session)
    notifier = await telegram_notifier(fake_telegram, session, BOT_NOTIFY_CONCURRENCY=4)
    await drain(notifier)

    preview = expected(session, digest_id)
    for c in people:
        (msg,) = to_chat(fake_telegram, c.address or "")
        assert msg["text"] == preview.text and "parse_mode" not in msg
        assert msg["reply_markup"] == preview.reply_markup()
        assert msg["link_preview_options"] == {"is_disabled": True}
    links = [b["url"] for b in buttons(preview.reply_markup()) if "url" in b]
    assert [f"{BASE}/cek-fakta/{v.id}" for v in verdicts] == [u for u in links if "/cek-fakta/" in u]
    assert f"{BASE}/kabar/{digest_id}" in links
    unsubscribe = [b for b in buttons(preview.reply_markup()) if "callback_data" in b]
    assert unsubscribe == [{"text": "Berhenti langganan", "callback_data": f"digest:unsub:{digest_id}"}]

    (post,) = to_chat(fake_telegram, CHANNEL)
    for_channel = expected(session, digest_id, channel=True)
    assert post["text"] == for_channel.text and post["reply_markup"] == for_channel.reply_markup()
    assert not any("callback_data" in b for b in buttons(post["reply_markup"]))
    assert {(n.kind, n.status, n.delivery_status) for n in rows(session, digest_id)} == {
        ("digest", "sent", "accepted"),
        ("digest_channel", "sent", "accepted"),
    }
    assert all(n.external_id and n.attempts == 1 for n in rows(session, digest_id))


async def test_a_new_verdict_goes_to_the_channel_with_its_page_and_withdrawn_ones_do_not(
    session: Session, fake_telegram: FakeTelegram, digest_env: pytest.MonkeyPatch
) -> None:
    channel_env(digest_env, verdicts=True)
    fresh, withdrawn = (
        Verdict(claim=claim, rating=rating, summary="Dinas terkait membantah.", status="in_review")
        for claim, rating in CLAIMS[:2]
    )
    session.add_all([fresh, withdrawn])
    session.flush()
    publish_verdict(fresh.id or 0, session=session)
    publish_verdict(withdrawn.id or 0, session=session)
    withdrawn.status = "withdrawn"
    session.add(withdrawn)
    session.commit()
    notifier = await telegram_notifier(fake_telegram, session)
    await drain(notifier)
    (post,) = to_chat(fake_telegram, CHANNEL)
    assert post["text"].startswith(f"CEK FAKTA: {fresh.rating}") and fresh.claim in post["text"]
    assert buttons(post["reply_markup"]) == [
        {"text": "Baca selengkapnya", "url": f"{BASE}/cek-fakta/{fresh.id}"}
    ]
    assert "link_preview_options" not in post  # one link: Telegram shows its card
    posts = session.exec(select(Notification).where(Notification.kind == "verdict_channel")).all()
    assert {(n.verdict_id, n.status) for n in posts} == {(fresh.id, "sent"), (withdrawn.id, "cancelled")}


async def test_verdicts_are_sent_before_a_large_digest_is_through(
    session: Session, fake_telegram: FakeTelegram, verdict: Verdict
) -> None:
    week(session)
    subscribers(session, 60)
    digest_id = publish(session)
    asker = subscribers(session, 1, subscribed_digest=False)[0]
    session.add(
        Notification(
            dedupe_key=f"verdict:{verdict.id}:asker:{asker.id}",
            citizen_id=asker.id,
            channel="telegram",
            kind="verdict",
            verdict_id=verdict.id,
        )
    )
    session.commit()  # queued after all 60 digest rows
    notifier = await telegram_notifier(fake_telegram, session, BOT_NOTIFY_BATCH=10)
    await notifier.run_once()
    (notice,) = to_chat(fake_telegram, asker.address or "")
    assert verdict.claim in notice["text"]
    assert sum(n.status == OutboxStatus.pending for n in rows(session, digest_id)) >= 50


async def test_a_429_pauses_the_whole_digest_until_retry_after_and_nothing_goes_twice(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    week(session)
    people = subscribers(session, 30)
    digest_id = publish(session)
    fake_telegram.fail_429, fake_telegram.retry_after, fake_telegram.flood_wait = 1, 1, True
    concurrency = 4
    notifier = await telegram_notifier(
        fake_telegram,
        session,
        BOT_NOTIFY_BATCH=5,
        BOT_NOTIFY_CONCURRENCY=concurrency,
        BOT_TELEGRAM_MAX_PER_S=0,
    )

    def all_sent() -> bool:
        return {n.status for n in rows(session, digest_id)} == {"sent"}

    await eventually(notifier.run_once, all_sent, what="the digest to be through")
    assert sorted(int(m["chat_id"]) for m in fake_telegram.sent()) == sorted(
        int(c.address or 0) for c in people
    )
    refused = [c for c in fake_telegram.calls if c.method == "sendMessage429"]
    # Only sends already in flight when the 429 came back can land inside the wait; every later batch
    # waited for it (a notifier that went on would have been refused for each remaining row).
    assert not refused[0].early and sum(c.early for c in refused) <= concurrency - 1


async def test_the_pace_stays_under_telegram_flood_control(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    week(session)
    people = subscribers(session, 40)
    digest_id = publish(session)
    fake_telegram.flood_per_s = 30  # Telegram's ~30 messages a second
    notifier = await telegram_notifier(
        fake_telegram, session, BOT_NOTIFY_CONCURRENCY=4, BOT_TELEGRAM_MAX_PER_S=15
    )
    await drain(notifier)
    assert [c.method for c in fake_telegram.calls].count("sendMessage429") == 0
    assert len(fake_telegram.sent()) == len(people)
    assert {n.status for n in rows(session, digest_id)} == {"sent"}


async def test_posts_into_one_channel_are_paced_per_minute(
    session: Session, fake_telegram: FakeTelegram, digest_env: pytest.MonkeyPatch
) -> None:
    channel_env(digest_env, verdicts=True)
    for claim, rating in CLAIMS:
        v = Verdict(claim=claim, rating=rating, summary="Dinas terkait membantah.", status="in_review")
        session.add(v)
        session.flush()
        publish_verdict(v.id or 0, session=session)
    session.commit()
    notifier = await telegram_notifier(
        fake_telegram, session, BOT_NOTIFY_CONCURRENCY=3, BOT_TELEGRAM_CHAT_MAX_PER_MIN=120
    )
    await drain(notifier)
    times = sorted(
        c.at for c in fake_telegram.calls if c.method == "sendMessage" and c.params["chat_id"] == CHANNEL
    )
    assert len(times) == 3
    assert all(b - a >= 0.4 for a, b in zip(times, times[1:], strict=False))  # 120/min: one per 0.5 s


async def test_rows_an_older_notifier_gave_up_on_are_delivered(
    session: Session, fake_telegram: FakeTelegram, digest_env: pytest.MonkeyPatch, verdict: Verdict
) -> None:
    channel_env(digest_env)
    week(session)
    (sub,) = subscribers(session, 1)
    digest_id = publish(session)
    for n in rows(session, digest_id):  # what the notifier before digest delivery did to them
        if n.kind == "digest":
            n.status, n.last_error = "failed", "nothing to render"
        else:
            n.status, n.last_error = "cancelled", "citizen unreachable or data deleted"
        session.add(n)
    gone = Notification(
        dedupe_key=f"verdict:{verdict.id}:gone",
        citizen_id=sub.id,
        channel="telegram",
        kind="verdict",
        verdict_id=verdict.id,
        status="failed",
        last_error="nothing to render",
    )
    session.add(gone)
    session.commit()
    notifier = await telegram_notifier(fake_telegram, session)
    await drain(notifier)
    assert len(to_chat(fake_telegram, sub.address or "")) == 1 and len(to_chat(fake_telegram, CHANNEL)) == 1
    assert {n.status for n in rows(session, digest_id)} == {"sent"}
    session.refresh(gone)
    assert gone.status == "failed"  # not a digest row: left as it was


async def test_a_blocked_or_deleted_subscriber_gets_nothing_from_a_digest_queued_before(
    session: Session, fake_telegram: FakeTelegram
) -> None:
    from bot.citizens import delete_data

    week(session)
    blocked, listed, deleted, staying = subscribers(session, 4)
    digest_id = publish(session)
    blocked.blocked = True
    session.add(blocked)
    delete_data(session, deleted)
    session.commit()
    notifier = await telegram_notifier(fake_telegram, session, BOT_BLOCKED_PSEUDONYMS={listed.pseudonym})
    await drain(notifier)
    assert [int(m["chat_id"]) for m in fake_telegram.sent()] == [int(staying.address or 0)]
    by_citizen = {n.citizen_id: n for n in rows(session, digest_id)}
    for c in (blocked, listed):
        assert (
            by_citizen[c.id].status == "cancelled" and "no longer subscribed" in by_citizen[c.id].last_error
        )
    assert by_citizen[staying.id].status == "sent"
    assert len(rows(session, digest_id)) == 4  # the deleted citizen's row: cancelled, unlinked


# --------------------------------------------------------------------------- unsubscribing


@pytest.fixture
async def webhook(
    core: BotCore, fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The real webhook routes: Telegram through PTB and the fake Bot API."""
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake_telegram.token)
    get_settings.cache_clear()
    tg = Bot(fake_telegram.token, base_url=fake_telegram.base_url)
    await tg.initialize()
    channel = TelegramChannel(tg, core)

    async def getter() -> TelegramChannel:
        return channel

    app = FastAPI()
    app.include_router(bot.web.router)
    app.dependency_overrides[get_core] = lambda: core
    app.dependency_overrides[bot.web.telegram_provider] = lambda: getter
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await tg.shutdown()
    get_settings.cache_clear()


def pressed(update_id: int, chat: int, data: str) -> dict[str, Any]:
    """A callback query: the citizen pressed an inline button under an old message."""
    user = {"id": chat, "is_bot": False, "first_name": "Warga"}
    message = {"message_id": 77, "date": int(time.time()) - 86400, "chat": {"id": chat, "type": "private"}}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq{update_id}",
            "from": user,
            "chat_instance": "1",
            "message": message,
            "data": data,
        },
    }


def typed(update_id: int, chat: int, text: str) -> dict[str, Any]:
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "Warga"},
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
    }
    return {"update_id": update_id, "message": message}


async def test_the_button_or_berhenti_and_the_next_digest_brings_nothing(
    session: Session, fake_telegram: FakeTelegram, webhook: httpx.AsyncClient, core: BotCore
) -> None:
    week(session)
    presser, typer, staying = subscribers(session, 3)
    presser.state = {"session": "a1b2c3d4"}  # a conversation went on since the digest arrived
    session.add(presser)
    session.commit()
    first = publish(session)
    notifier = await telegram_notifier(fake_telegram, session)
    await drain(notifier)
    second = publish(session)  # queued for all three, not sent yet

    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    old_button = pressed(9_100_001, int(presser.address or 0), f"digest:unsub:{first}")
    assert (await webhook.post("/webhooks/telegram", json=old_button, headers=headers)).status_code == 200
    berhenti = typed(9_100_002, int(typer.address or 0), "/berhenti")
    assert (await webhook.post("/webhooks/telegram", json=berhenti, headers=headers)).status_code == 200
    answered = [c.params for c in fake_telegram.calls if c.method == "answerCallbackQuery"]
    assert [a["callback_query_id"] for a in answered] == ["cq9100001"]
    for c in (presser, typer):
        assert to_chat(fake_telegram, c.address or "")[-1]["text"] == messages.UNSUBSCRIBED
        session.refresh(c)
        assert not c.subscribed_digest

    await drain(notifier)
    second_rows = {n.citizen_id: n.status for n in rows(session, second)}
    assert second_rows == {presser.id: "cancelled", typer.id: "cancelled", staying.id: "sent"}
    third = publish(session)
    assert [n.citizen_id for n in rows(session, third)] == [staying.id]
    await drain(notifier)
    digest_texts = {
        c.address: [
            m for m in to_chat(fake_telegram, c.address or "") if m["text"].startswith("KABAR CEK FAKTA")
        ]
        for c in (presser, typer, staying)
    }
    assert [len(digest_texts[c.address]) for c in (presser, typer, staying)] == [1, 1, 3]


# --------------------------------------------------------------------------- WhatsApp


@pytest.fixture
def graph() -> Graph:
    return Graph()


@pytest.fixture
def wa_client(graph: Graph) -> WhatsAppClient:
    return graph.client()


async def test_whatsapp_free_text_inside_the_window_and_the_template_outside(
    session: Session, graph: Graph, wa_client: WhatsAppClient
) -> None:
    week(session)
    (recent,) = subscribers(session, 1, "whatsapp", last_inbound_at=utcnow() - timedelta(hours=3))
    (away,) = subscribers(session, 1, "whatsapp", last_inbound_at=utcnow() - timedelta(days=3))
    digest_id = publish(session)
    notifier = Notifier({"whatsapp": wa_client}, bot_settings(), reusing(session))
    await drain(notifier)

    posts = {p["to"]: p for p in graph.posts}
    assert len(graph.posts) == 2
    view = digests.view(session.get_one(Digest, digest_id), session=session)
    inside = digest_render.whatsapp(view, inside_window=True).text
    assert posts[recent.address] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recent.address,
        "type": "text",
        "text": {"body": inside, "preview_url": False},
    }
    assert inside.startswith("KABAR CEK FAKTA KUPANG") and "kirim /berhenti" in inside
    template = posts[away.address]
    assert template["messaging_product"] == "whatsapp" and template["type"] == "template"
    body, button = template["template"]["components"]
    assert template["template"]["name"] == "kabar_cek_fakta" and template["template"]["language"] == {
        "code": "id"
    }
    params = [p["text"] for p in body["parameters"]]
    assert body["type"] == "body" and all(p["type"] == "text" for p in body["parameters"])
    assert params[1:] == ["3", f"{CLAIMS[0][1]} – {CLAIMS[0][0]}", f"{BASE}/kabar/{digest_id}"]
    assert button == {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "0",
        "parameters": [{"type": "payload", "payload": f"digest:unsub:{digest_id}"}],
    }
    assert {(n.status, n.external_id is not None) for n in rows(session, digest_id)} == {("sent", True)}


async def test_whatsapp_throughput_errors_wait_instead_of_failing(
    graph: Graph, wa_client: WhatsAppClient
) -> None:
    to = Recipient("6281300000001", "whatsapp", utcnow())
    graph.error = (400, 130429)  # the business number's throughput is reached
    with pytest.raises(RetryLater):
        await wa_client.send_notification(to, Notice("x"))
    graph.error = (400, 131056)  # too many messages to this one citizen just now
    with pytest.raises(TransientError):
        await wa_client.send_notification(to, Notice("x"))


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


async def test_the_template_quick_reply_unsubscribes(
    session: Session, core: BotCore, graph: Graph, wa_client: WhatsAppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHATSAPP_APP_SECRET", WA_SECRET)
    get_settings.cache_clear()
    week(session)
    (citizen,) = subscribers(session, 1, "whatsapp", last_inbound_at=utcnow() - timedelta(days=5))
    digest_id = publish(session)
    sample = json.loads(Path("/work/shared/data/whatsapp/wa_template_quick_reply_button.json").read_text())
    msg = sample["entry"][0]["changes"][0]["value"]["messages"][0]
    msg.update({"from": citizen.address, "id": f"wamid.{uuid.uuid4().hex}"})
    msg["button"] = {"payload": f"digest:unsub:{digest_id}", "text": "Berhenti langganan"}
    body = json.dumps(sample).encode()
    app = FastAPI()
    app.include_router(bot.web.router)
    app.dependency_overrides[get_core] = lambda: core
    app.dependency_overrides[get_whatsapp] = lambda: wa_client
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (
            await client.post("/webhooks/whatsapp", content=body, headers=signed(body))
        ).status_code == 200
    get_settings.cache_clear()
    (reply,) = graph.posts
    assert reply["to"] == citizen.address and reply["text"]["body"] == messages.UNSUBSCRIBED
    session.refresh(citizen)
    assert not citizen.subscribed_digest
    notifier = Notifier({"whatsapp": wa_client}, bot_settings(), reusing(session))
    await drain(notifier)
    assert len(graph.posts) == 1 and {n.status for n in rows(session, digest_id)} == {"cancelled"}


# --------------------------------------------------------------------------- killed mid-digest


def test_notifier_killed_mid_digest_sends_each_subscriber_once_after_restart(
    worker_db: str, fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    with Session(engine_for(worker_db)) as s:
        week(s)
        people = subscribers(s, 12)
        chats = sorted(int(c.address or 0) for c in people)
        digest_id = publish(s)
        preview = expected(s, digest_id)
    fake_telegram.hang_after = 4  # the 5th sendMessage and every later one never return
    env = {"PUBLIC_BASE_URL": BASE, "TELEGRAM_CHANNEL_ID": "", "BOT_NOTIFY_CONCURRENCY": "3"}

    def stuck() -> bool:  # sends in flight and every accepted one marked sent: nothing in between
        return fake_telegram.hanging >= 1 and statuses(worker_db).count("sent") == len(fake_telegram.sent())

    proc = start_notifier(worker_db, fake_telegram, tmp_path, **env)
    try:
        wait_until(stuck, what="the worker to hang mid-digest")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert statuses(worker_db).count("sent") == 4 and "pending" in statuses(worker_db)
    fake_telegram.hang_after = None
    proc = start_notifier(worker_db, fake_telegram, tmp_path, **env)
    try:
        wait_until(lambda: statuses(worker_db) == ["sent"] * 12, what="every subscriber's row to be sent")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)  # once it has exited, no late duplicate can arrive
    sent = fake_telegram.sent()
    assert sorted(int(m["chat_id"]) for m in sent) == chats
    assert all(m["text"] == preview.text and m["reply_markup"] == preview.reply_markup() for m in sent)
