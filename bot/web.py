"""Web routes of the bot: Telegram and WhatsApp webhooks, and the staff-only "Coba bot" page.

Mounted by `kabashoax.web.create_app` next to the console. The page uses the console's own staff
login, CSRF check and page renderer (layout, security headers); the bot may not import the console,
so it declares them as dependencies below (`staff_user`, `csrf_check`, `page_renderer`) that the
composed app fills with the console's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import col, select

from bot import citizens, metrics_hooks
from bot.core import BotCore, Envelope
from bot.dialogue import Incoming, Reply, parse_command
from bot.edge import BodyTooLarge, NotJson, clean_text, parse_json, read_body
from bot.runtime import get_core, get_telegram, get_whatsapp
from bot.settings import get_settings
from bot.telegram import TelegramChannel, is_update_object, read_update
from bot.whatsapp import (
    StatusUpdate,
    WebhookBody,
    WhatsAppClient,
    parse_webhook,
    record_statuses,
    verify_signature,
)
from knowledge_base.models import Citizen, InboundMessage, StaffUser

log = logging.getLogger(__name__)
router = APIRouter()
PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"  # rendered by the console's renderer, in its layout
STATIC_DIR = PACKAGE_DIR / "static"
STATIC_PATH = "/coba-bot/static"

CoreDep = Annotated[BotCore, Depends(get_core)]
WhatsAppDep = Annotated[WhatsAppClient, Depends(get_whatsapp)]


def telegram_provider() -> Callable[[], Awaitable[TelegramChannel]]:
    """A getter, not the channel: the bot is initialised (getMe) only after the secret was checked."""
    return get_telegram


TelegramDep = Annotated[Callable[[], Awaitable[TelegramChannel]], Depends(telegram_provider)]
WEB_CHANNEL = "web"
HISTORY = 20


@router.post("/webhooks/telegram", include_in_schema=False)
async def telegram_webhook(request: Request, telegram: TelegramDep) -> Response:
    """Processed before answering: a 5xx makes Telegram redeliver, and the stored replies go out then.

    Not JSON, or not an object with an integer `update_id`: 400. An update PTB cannot read, or one we do
    not handle: 200 and a log line (a refusal would only be redelivered, forever)."""
    settings = get_settings()
    secret = settings.telegram_webhook_secret
    given = request.headers.get("x-telegram-bot-api-secret-token", "")
    if not secret or not secrets.compare_digest(given.encode(), secret.encode()):
        return PlainTextResponse("forbidden", status_code=403)
    if not settings.telegram_bot_token:
        return PlainTextResponse("telegram is not configured", status_code=503)
    try:
        data = parse_json(await read_body(request, settings.webhook_max_bytes))
    except BodyTooLarge:
        return _too_large("telegram")
    except NotJson as exc:
        log.warning("telegram webhook body is not JSON: %s", exc)
        return PlainTextResponse("bad request", status_code=400)
    if not is_update_object(data):
        log.warning("telegram webhook body is not an update object")
        return PlainTextResponse("bad request", status_code=400)
    channel = await telegram()
    update = read_update(data, channel.bot)
    if update is not None:
        await channel.handle_update(update)
    return Response(status_code=200)


def _too_large(channel: str) -> Response:
    log.warning("%s webhook body over BOT_WEBHOOK_MAX_BYTES refused", channel)
    return PlainTextResponse("payload too large", status_code=413)


@router.get("/webhooks/whatsapp", include_in_schema=False)
async def whatsapp_verify(request: Request) -> Response:
    """Meta's subscription handshake: echo the challenge when the verify token matches."""
    q = request.query_params
    token = get_settings().whatsapp_verify_token
    given = q.get("hub.verify_token", "")
    if q.get("hub.mode") == "subscribe" and token and secrets.compare_digest(given.encode(), token.encode()):
        return PlainTextResponse(q.get("hub.challenge", ""))
    return PlainTextResponse("forbidden", status_code=403)


@router.post("/webhooks/whatsapp", include_in_schema=False)
async def whatsapp_webhook(request: Request, core: CoreDep, client: WhatsAppDep) -> Response:
    """Signed bodies only. Not JSON, or not an object whose `entry` is a list: 400; a part of the wrong
    shape inside is skipped with a log line and the rest processed (200)."""
    settings = get_settings()
    try:
        raw = await read_body(request, settings.webhook_max_bytes)
    except BodyTooLarge:
        return _too_large("whatsapp")
    if not verify_signature(raw, request.headers.get("x-hub-signature-256"), settings.whatsapp_app_secret):
        return PlainTextResponse("forbidden", status_code=403)
    try:
        body = WebhookBody.model_validate(parse_json(raw))
    except (NotJson, ValidationError) as exc:
        log.warning("whatsapp webhook body refused: %s", type(exc).__name__)
        return PlainTextResponse("bad request", status_code=400)
    envelopes, statuses = parse_webhook(body)
    for env in envelopes:
        await core.handle(env, client.send)
    if statuses:
        metrics_hooks.reported_statuses("whatsapp", statuses)
        await asyncio.to_thread(_record_statuses, core, statuses)
    return PlainTextResponse("ok")


def _record_statuses(core: BotCore, statuses: list[StatusUpdate]) -> None:
    with core.session_factory() as s:
        record_statuses(s, statuses)


# ---------------------------------------------------------------------------- Coba bot


class PageRenderer(Protocol):
    """The console's `render`: a template in the console's layout, with its security headers."""

    def __call__(self, request: Request, name: str, context: dict[str, Any]) -> Response: ...


def _unwired(name: str) -> RuntimeError:
    return RuntimeError(f"bot.web.{name} comes from the console: serve the bot through kabashoax.web")


def staff_user() -> StaffUser:
    """The logged-in staff member; the composed app puts the console's `current_user` here."""
    raise _unwired("staff_user")


def csrf_check() -> None:
    """Refuses a state change without the session's CSRF token; the console's `csrf_protect`."""
    raise _unwired("csrf_check")


def page_renderer() -> PageRenderer:
    """The console's renderer (layout, CSRF token for forms, security headers)."""
    raise _unwired("page_renderer")


StaffDep = Annotated[StaffUser, Depends(staff_user)]
RendererDep = Annotated[PageRenderer, Depends(page_renderer)]


def _address(user: StaffUser) -> str:
    return f"staff:{user.id}"


def _history(core: BotCore, address: str) -> list[dict[str, Any]]:
    """The staff member's own test conversation, oldest first, as the citizen would see it."""
    key = get_settings().pseudonym_key
    with core.session_factory() as s:
        pid = citizens.pseudonym(WEB_CHANNEL, address, key)
        citizen = s.exec(
            select(Citizen).where(Citizen.channel == WEB_CHANNEL, Citizen.pseudonym == pid)
        ).first()
        if citizen is None:
            return []
        rows = s.exec(
            select(InboundMessage)
            .where(InboundMessage.citizen_id == citizen.id)
            .order_by(col(InboundMessage.id).desc())
            .limit(HISTORY)
        ).all()
        return [
            {"text": m.text or "", "kind": m.kind, "replies": [Reply.from_dict(r) for r in m.replies or []]}
            for m in reversed(rows)
        ]


@router.get("/coba-bot", include_in_schema=False)
async def coba_bot(request: Request, user: StaffDep, core: CoreDep, render: RendererDep) -> Response:
    history = await asyncio.to_thread(_history, core, _address(user))
    return render(request, "coba_bot.html", {"user": user, "history": history, "static": STATIC_PATH})


@router.post("/coba-bot/send", include_in_schema=False, dependencies=[Depends(csrf_check)])
async def coba_bot_send(request: Request, user: StaffDep, core: CoreDep) -> Response:
    form = await request.form()
    button = form.get("button")
    text = clean_text(str(form.get("text") or ""))
    if button:
        incoming = Incoming(button=clean_text(str(button)))
    else:
        command, rest = parse_command(text.strip())
        incoming = Incoming(text=rest, command=command)
    env = Envelope(WEB_CHANNEL, f"web-{uuid.uuid4().hex}", _address(user), incoming, {"kind": "web"})

    async def shown_on_page(address: str, replies: list[Reply]) -> None:
        """The page shows stored replies; nothing to push."""

    await core.handle(env, shown_on_page)
    return RedirectResponse("/coba-bot", status_code=303)
