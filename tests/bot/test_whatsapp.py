"""WhatsApp: the real Cloud API payloads in ../shared/data/whatsapp posted with correct and forged
signatures, replies through a fake Graph API, delivery statuses, and the 24-hour template rule."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

import bot.web
from bot import messages
from bot.core import BotCore
from bot.delivery import Notice, PermanentError, Recipient, RetryLater
from bot.runtime import get_core, get_whatsapp
from bot.settings import get_settings
from bot.whatsapp import WhatsAppClient, verify_signature
from knowledge_base.models import Citizen, InboundMessage, Notification, utcnow
from tests.helpers.bot import FUZZ, FUZZ_JSON, WA_SECRET, bot_settings

DATA = Path("/work/shared/data/whatsapp")
PAYLOADS = sorted(DATA.glob("wa_*.json"))
PHONE = "972987654321"


def sign(body: bytes, secret: str = WA_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


class Graph:
    """Fake Graph API: records message posts, answers like Meta does."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.status = 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer wa-token"
        assert request.url.path == "/v21.0/1122334455667/messages"
        self.posts.append(json.loads(request.content))
        if self.status != 200:
            return httpx.Response(
                self.status, json={"error": {"message": "nope"}}, headers={"Retry-After": "7"}
            )
        return httpx.Response(200, json={"messages": [{"id": f"wamid.out{len(self.posts)}"}]})


@pytest.fixture
def graph() -> Graph:
    return Graph()


@pytest.fixture
def wa_client(graph: Graph) -> WhatsAppClient:
    return WhatsAppClient(bot_settings(), httpx.AsyncClient(transport=httpx.MockTransport(graph.handler)))


@pytest.fixture
async def client(
    core: BotCore, wa_client: WhatsAppClient, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("WHATSAPP_APP_SECRET", WA_SECRET)
    monkeypatch.setenv("WHATSAPP_VERIFY_TOKEN", "verify-me")
    get_settings.cache_clear()
    app = FastAPI()
    app.include_router(bot.web.router)
    app.dependency_overrides[get_core] = lambda: core
    app.dependency_overrides[get_whatsapp] = lambda: wa_client
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    get_settings.cache_clear()


def test_signature_matches_the_documented_test_vector() -> None:
    body = (DATA / "wa_message_text.json").read_bytes()
    header = "sha256=b264eb5b5caeb4444144d6fdcdc96f3fff87bcb2b047eeecaa785c419b4766a9"
    assert verify_signature(body, header, WA_SECRET)
    assert not verify_signature(body + b" ", header, WA_SECRET)
    assert not verify_signature(body, header, "")


@pytest.mark.parametrize("path", PAYLOADS, ids=[p.stem for p in PAYLOADS])
async def test_forged_or_missing_signature_is_403_and_stores_nothing(
    path: Path, client: httpx.AsyncClient, graph: Graph, session: Session
) -> None:
    body = path.read_bytes()
    before = session.exec(select(InboundMessage.id)).all()
    for headers in (sign(body, "wrong-secret"), {"Content-Type": "application/json"}, sign(body + b"\n")):
        assert (await client.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 403
    assert graph.posts == [] and session.exec(select(InboundMessage.id)).all() == before


EXPECTED_FIRST_REPLY = {
    "wa_message_image": messages.MEDIA["photo"],
    "wa_message_voice": messages.MEDIA["voice"],
    "wa_message_current_location": messages.MEDIA["location"],
    "wa_message_unsupported": messages.MEDIA_OTHER,
    "wa_interactive_button_reply": messages.STALE_BUTTON,
    "wa_interactive_list_reply": messages.STALE_BUTTON,
    "wa_template_quick_reply_button": messages.STALE_BUTTON,
}


@pytest.mark.parametrize("path", PAYLOADS, ids=[p.stem for p in PAYLOADS])
async def test_every_real_payload_with_a_good_signature_is_handled(
    path: Path, client: httpx.AsyncClient, graph: Graph, session: Session
) -> None:
    body = path.read_bytes()
    data = json.loads(body)
    value = data["entry"][0]["changes"][0]["value"]
    for msg in session.exec(select(InboundMessage).where(InboundMessage.channel == "whatsapp")).all():
        session.delete(msg)  # the samples share message ids; each test starts with none of them
    session.commit()
    resp = await client.post("/webhooks/whatsapp", content=body, headers=sign(body))
    assert resp.status_code == 200
    if "statuses" in value:
        assert graph.posts == []
        return
    assert len(graph.posts) >= 1 and all(p["to"] == PHONE for p in graph.posts)
    first = graph.posts[0]
    text = first["text"]["body"] if first["type"] == "text" else first["interactive"]["body"]["text"]
    if path.stem in EXPECTED_FIRST_REPLY:
        assert text == EXPECTED_FIRST_REPLY[path.stem]
    stored = session.exec(
        select(InboundMessage).where(
            InboundMessage.channel == "whatsapp", InboundMessage.external_id == value["messages"][0]["id"]
        )
    ).one()
    assert stored.replied_at is not None and PHONE not in json.dumps(stored.payload)
    citizen = session.get(Citizen, stored.citizen_id)
    assert citizen.pseudonym != PHONE and PHONE not in citizen.pseudonym
    # Meta redelivers the same webhook: no second reply.
    n = len(graph.posts)
    assert (await client.post("/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 200
    assert len(graph.posts) == n


async def test_statuses_are_recorded_in_order(client: httpx.AsyncClient, session: Session) -> None:
    n = Notification(
        dedupe_key="wa-status-1",
        channel="whatsapp",
        kind="verdict",
        status="sent",
        external_id="wamid.xyzxyz",
    )
    session.add(n)
    session.commit()
    for name, expected in [("sent", "sent"), ("read", "read"), ("delivered", "read"), ("failed", "failed")]:
        body = (DATA / f"wa_status_{name}.json").read_bytes()
        assert (await client.post("/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 200
        session.refresh(n)
        assert n.delivery_status == expected
    assert "experiment" in n.last_error


async def test_verification_handshake(client: httpx.AsyncClient) -> None:
    ok = await client.get(
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = await client.get(
        "/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
    )
    assert bad.status_code == 403


async def test_notification_uses_text_inside_24h_and_template_outside(
    wa_client: WhatsAppClient, graph: Graph
) -> None:
    recent = Recipient(PHONE, "whatsapp", utcnow() - timedelta(hours=2))
    assert await wa_client.send_notification(recent, Notice("Hasil cek fakta: HOAKS")) == "wamid.out1"
    assert graph.posts[-1]["type"] == "text"
    old = Recipient(PHONE, "whatsapp", utcnow() - timedelta(hours=30))
    await wa_client.send_notification(old, Notice("Hasil cek fakta:\nHOAKS"))
    template = graph.posts[-1]["template"]
    assert graph.posts[-1]["type"] == "template" and template["name"] == "kabashoax_update"
    assert template["components"][0]["parameters"][0]["text"] == "Hasil cek fakta: HOAKS"


async def test_graph_errors_map_to_retry_decisions(wa_client: WhatsAppClient, graph: Graph) -> None:
    to = Recipient(PHONE, "whatsapp", utcnow())
    graph.status = 429
    with pytest.raises(RetryLater) as exc:
        await wa_client.send_notification(to, Notice("x"))
    assert exc.value.after_s == 7
    graph.status = 400
    with pytest.raises(PermanentError):
        await wa_client.send_notification(to, Notice("x"))


def text_body(message_id: str, text: str = "halo", *, part: object = None) -> dict:
    """The real text-message payload with this message id and text (or this whole `text` part)."""
    data = json.loads((DATA / "wa_message_text.json").read_text())
    msg = data["entry"][0]["changes"][0]["value"]["messages"][0]
    msg["id"], msg["text"] = message_id, {"body": text} if part is None else part
    return data


async def test_signature_of_any_other_form_is_refused_without_an_error(client: httpx.AsyncClient) -> None:
    body = (DATA / "wa_message_text.json").read_bytes()
    good = sign(body)["X-Hub-Signature-256"]
    for header in (
        "sha256=\xe9",
        "sha256=" + "\xe9" * 64,
        good.removeprefix("sha256="),
        good.upper(),
        good + "0",
    ):
        assert not verify_signature(body, header, WA_SECRET)
        raw = header.encode("latin-1")  # on the wire, as a client may send it (Starlette reads latin-1)
        headers = {"X-Hub-Signature-256": raw, "Content-Type": b"application/json"}
        resp = await client.post("/webhooks/whatsapp", content=body, headers=headers)
        assert resp.status_code == 403


def _entry(change: object) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"changes": [change]}]}


MALFORMED = {  # validly signed: refused (400) or the bad part skipped (200), never a 5xx
    "entry is a number": {"entry": 5},
    "entries are numbers": {"entry": [1, 2]},
    "changes is text": {"entry": [{"changes": "x"}]},
    "messages are numbers": _entry({"value": {"messages": [1]}}),
    "statuses are text": _entry({"value": {"statuses": ["x"]}}),
    "errors are text": _entry({"value": {"statuses": [{"id": "w", "status": "failed", "errors": ["e"]}]}}),
    "text body is a number": text_body("wamid.bad1", part={"body": 5}),
    "text is a string": text_body("wamid.bad2", part="hi"),
    "top level is a list": [1],
    "deep nesting": json.loads('{"entry":[' + '{"a":' * 400 + "1" + "}" * 400 + "]}"),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_signed_body_is_never_a_5xx(
    client: httpx.AsyncClient, graph: Graph, data: object
) -> None:
    body = json.dumps(data).encode()
    resp = await client.post("/webhooks/whatsapp", content=body, headers=sign(body))
    assert resp.status_code in (200, 400)
    assert graph.posts == []


async def test_nesting_deeper_than_the_parser_allows_is_a_400(client: httpx.AsyncClient) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    assert (await client.post("/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 400


async def test_bad_message_beside_a_good_one_leaves_the_good_one_answered(
    client: httpx.AsyncClient, graph: Graph, session: Session
) -> None:
    data = text_body("wamid.good1", "jam buang sampah di kota kupang?")
    data["entry"][0]["changes"][0]["value"]["messages"].insert(0, {"id": 5, "text": "hi"})
    body = json.dumps(data).encode()
    assert (await client.post("/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 200
    assert session.exec(select(InboundMessage).where(InboundMessage.external_id == "wamid.good1")).one()
    assert len(graph.posts) == 1


async def test_message_with_a_lone_surrogate_is_stored_and_answered(
    client: httpx.AsyncClient, graph: Graph, session: Session
) -> None:
    body = json.dumps(text_body("wamid.surrogate", "\ud800 halo")).encode()
    for _ in range(2):
        assert (await client.post("/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 200
    stored = session.exec(select(InboundMessage).where(InboundMessage.external_id == "wamid.surrogate")).one()
    assert stored.text == "\ufffd halo"
    assert len(graph.posts) == 1


async def test_body_over_the_cap_is_refused_with_413(client: httpx.AsyncClient, graph: Graph) -> None:
    body = json.dumps(text_body("wamid.big", "x" * (get_settings().webhook_max_bytes + 1))).encode()
    assert (await client.post("/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 413
    assert graph.posts == []


def _with_message(message: object) -> dict:
    data = text_body("wamid.fuzz")
    data["entry"][0]["changes"][0]["value"]["messages"] = [message]
    return data


@FUZZ
@given(st.one_of(FUZZ_JSON, st.builds(_with_message, FUZZ_JSON)), st.binary(max_size=64))
async def test_any_validly_signed_body_is_never_a_5xx(
    client: httpx.AsyncClient, data: object, noise: bytes
) -> None:
    for body in (json.dumps(data).encode(), noise):
        resp = await client.post("/webhooks/whatsapp", content=body, headers=sign(body))
        assert resp.status_code < 500
