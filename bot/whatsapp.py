"""WhatsApp Cloud API channel: signed webhook payloads in, Graph API messages out.

Payload shapes follow Meta's webhook reference (and the pywa test payloads in ../shared/data/whatsapp).
The signature is checked on the raw body before anything is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from bot import messages
from bot.core import Envelope
from bot.delivery import Notice, PermanentError, Recipient, RetryLater, TransientError
from bot.dialogue import Incoming, Reply, parse_command
from bot.edge import clean_text
from bot.settings import BotSettings
from knowledge_base.models import Notification, utcnow

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
WINDOW = timedelta(hours=24)
STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
MEDIA_NAMES = {"image": "photo", "video": "video", "document": "document", "sticker": "sticker"}
# Meta's message types; any other value is stored and answered as "unsupported".
KNOWN_TYPES = frozenset(
    {"text", "interactive", "button", "audio", "reaction", "location", "contacts", "order", "system"}
    | set(MEDIA_NAMES)
)
# Graph API error codes that mean "slow down", not "never": API call rate (4, 80007) and the business
# number's message throughput (130429) pause the channel; the pair rate (131056: too many messages to
# one citizen in a short time) retries only that message, with backoff.
THROTTLED_CODES = frozenset({4, 80007, 130429})
PAIR_RATE_CODE = 131056
THROTTLED_WAIT_S = 10.0
SIGNATURE_RE = re.compile(r"sha256=[0-9a-f]{64}")


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """X-Hub-Signature-256 = 'sha256=' + 64 lowercase hex digits of HMAC-SHA256(app secret, raw body).

    Any other form (no prefix, upper case, wrong length, non-ASCII) is refused; bytes are compared, so
    no header value can raise.
    """
    if not secret or not header or not SIGNATURE_RE.fullmatch(header):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode())


@dataclass(frozen=True)
class StatusUpdate:
    message_id: str
    status: str
    error: str | None


class _Part(BaseModel):
    """A part of Meta's webhook body that we read: strict types, unknown keys ignored, text cleaned."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _clean(cls, value: object) -> object:
        return clean_text(value) if isinstance(value, str) else value


class _Text(_Part):
    body: str = ""


class _Picked(_Part):
    id: str = ""


class _Interactive(_Part):
    button_reply: _Picked | None = None
    list_reply: _Picked | None = None


class _Button(_Part):
    payload: str = ""


class _Media(_Part):
    caption: str = ""


class _Audio(_Part):
    voice: bool = False


class _Context(_Part):
    forwarded: bool = False


class WAMessage(_Part):
    """One citizen message (`entry[].changes[].value.messages[]`)."""

    id: str = Field(min_length=1, max_length=200)
    sender: str = Field(alias="from", min_length=1, max_length=100)
    type: str = ""
    context: _Context | None = None
    text: _Text | None = None
    interactive: _Interactive | None = None
    button: _Button | None = None
    image: _Media | None = None
    video: _Media | None = None
    document: _Media | None = None
    sticker: _Media | None = None
    audio: _Audio | None = None


class _StatusError(_Part):
    title: str | None = None


class WAStatus(_Part):
    """The delivery status of one of our messages (`...value.statuses[]`)."""

    id: str = ""
    status: str = ""
    errors: list[_StatusError] | None = None


class _Value(_Part):
    messages: list[object] | None = None
    statuses: list[object] | None = None


class _Change(_Part):
    value: _Value | None = None


class _Entry(_Part):
    changes: list[object] | None = None


class WebhookBody(_Part):
    """The top level: an object whose `entry`, if present, is a list. Anything else is a 400."""

    entry: list[object] | None = None


P = TypeVar("P", bound=_Part)


def parse_webhook(body: WebhookBody) -> tuple[list[Envelope], list[StatusUpdate]]:
    """Citizen messages and delivery statuses in one webhook body. A part of the wrong shape is
    skipped with a warning (Meta would redeliver a refused body forever); the good parts are kept."""
    envelopes: list[Envelope] = []
    statuses: list[StatusUpdate] = []
    for entry in _valid(_Entry, body.entry, "entry"):
        for change in _valid(_Change, entry.changes, "change"):
            value = change.value or _Value()
            for msg in _valid(WAMessage, value.messages, "message"):
                env = _envelope(msg)
                if env is not None:
                    envelopes.append(env)
            for st in _valid(WAStatus, value.statuses, "status"):
                error = st.errors[0].title if st.errors else None
                statuses.append(StatusUpdate(st.id, st.status, error))
    return envelopes, statuses


def _valid(model: type[P], items: list[object] | None, what: str) -> Iterator[P]:
    for item in items or []:
        try:
            yield model.model_validate(item)
        except ValidationError as exc:  # the field paths only: never the citizen's text
            where = ", ".join(".".join(map(str, e["loc"])) or "(top)" for e in exc.errors()[:3])
            log.warning("whatsapp webhook: %s of the wrong shape skipped (%s)", what, where)


def _envelope(msg: WAMessage) -> Envelope | None:
    kind = msg.type if msg.type in KNOWN_TYPES else "unsupported"
    if kind == "reaction":
        return None
    forwarded = msg.context is not None and msg.context.forwarded
    if kind == "interactive":
        inter = msg.interactive or _Interactive()
        picked = inter.button_reply or inter.list_reply or _Picked()
        incoming = Incoming(button=picked.id)
    elif kind == "button":
        incoming = Incoming(button=(msg.button or _Button()).payload)
    elif kind == "text":
        command, rest = parse_command((msg.text or _Text()).body)
        incoming = Incoming(text=rest, command=command, forwarded=forwarded)
    elif kind in MEDIA_NAMES:
        media: _Media | None = getattr(msg, kind)
        incoming = Incoming(text=(media or _Media()).caption, media=MEDIA_NAMES[kind], forwarded=forwarded)
    elif kind == "audio":
        incoming = Incoming(media="voice" if msg.audio is not None and msg.audio.voice else "audio")
    else:  # location, contacts, unsupported, …: a polite explanation
        incoming = Incoming(media=kind)
    return Envelope(CHANNEL, msg.id, msg.sender, incoming, {"kind": kind, "forwarded": forwarded})


def record_statuses(session: Session, statuses: list[StatusUpdate]) -> int:
    """Delivery status of our notifications; a late 'delivered' never overwrites 'read'."""
    updated = 0
    for st in statuses:
        n = session.exec(select(Notification).where(Notification.external_id == st.message_id)).first()
        if n is None:
            continue
        if STATUS_RANK.get(st.status, -1) >= STATUS_RANK.get(n.delivery_status or "accepted", 0):
            n.delivery_status = st.status
            if st.error:
                n.last_error = f"whatsapp: {st.error}"[:2000]
            session.add(n)
            updated += 1
    session.commit()
    return updated


class WhatsAppClient:
    """Sends through the Graph API base URL from settings (a local fake server in tests)."""

    def __init__(self, settings: BotSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=15.0)

    async def initialize(self) -> None:
        """Nothing to prepare: the Graph API needs no start-up call."""

    @property
    def _url(self) -> str:
        base = self.settings.whatsapp_api_base_url.rstrip("/")
        return f"{base}/{self.settings.whatsapp_phone_number_id}/messages"

    async def _post(self, to: str, body: dict[str, Any]) -> str | None:
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **body}
        headers = {"Authorization": f"Bearer {self.settings.whatsapp_access_token}"}
        try:
            resp = await self.http.post(self._url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"whatsapp: {type(exc).__name__}") from exc
        if resp.status_code == 429:
            raise RetryLater(float(resp.headers.get("Retry-After", "60")))
        if resp.status_code >= 500:
            raise TransientError(f"whatsapp: HTTP {resp.status_code}")
        if resp.status_code >= 400:  # Meta's error code and title only: never echo the request back
            try:
                err = resp.json().get("error") or {}
            except ValueError:
                err = {}
            code = err.get("code")
            detail = f"whatsapp: HTTP {resp.status_code} {code or ''} {err.get('message', '')}"[:300]
            if code in THROTTLED_CODES:
                raise RetryLater(float(resp.headers.get("Retry-After", THROTTLED_WAIT_S)), detail)
            if code == PAIR_RATE_CODE:
                raise TransientError(detail)
            raise PermanentError(detail)
        ids = [m.get("id") for m in (resp.json().get("messages") or [])]
        return ids[0] if ids else None

    async def send(self, address: str, replies: list[Reply]) -> None:
        """Conversation replies (always inside the 24-hour window: the citizen just wrote)."""
        for reply in replies:
            for body in _reply_bodies(reply):
                await self._post(address, body)

    async def send_notification(self, to: Recipient, notice: Notice) -> str | None:
        """Free text inside the customer-service window, otherwise an approved template: a digest's
        own (`DIGEST_WHATSAPP_TEMPLATE`, with its unsubscribe button), else `WHATSAPP_TEMPLATE_NAME`."""
        inside = to.last_inbound_at is not None and utcnow() - to.last_inbound_at < WINDOW
        if notice.whatsapp is not None:
            return await self._post(to.address, notice.whatsapp(inside).graph_body())
        text = notice.text
        if inside:
            return await self._post(to.address, {"type": "text", "text": {"body": text, "preview_url": True}})
        params = [{"type": "text", "text": p} for p in messages.template_params(text)]
        template = {
            "name": self.settings.whatsapp_template_name,
            "language": {"code": self.settings.whatsapp_template_language},
            "components": [{"type": "body", "parameters": params}],
        }
        return await self._post(to.address, {"type": "template", "template": template})


def _reply_bodies(reply: Reply) -> list[dict[str, Any]]:
    """Plain text, reply buttons (≤ 3) or a list (≤ 10 rows). Interactive bodies are capped at 1024
    characters, so a longer text goes first as plain text and the buttons follow under a short prompt."""
    text = {"type": "text", "text": {"body": reply.text[:4096], "preview_url": True}}
    if not reply.buttons:
        return [text]
    if len(reply.text) > 1024:
        return [text, _interactive(messages.CHOOSE, reply)]
    return [_interactive(reply.text, reply)]


def _interactive(text: str, reply: Reply) -> dict[str, Any]:
    body = {"text": text}
    if len(reply.buttons) <= 3:
        buttons = [{"type": "reply", "reply": {"id": b.data, "title": b.label[:20]}} for b in reply.buttons]
        return {
            "type": "interactive",
            "interactive": {"type": "button", "body": body, "action": {"buttons": buttons}},
        }
    rows = [{"id": b.data, "title": b.label[:24]} for b in reply.buttons[:10]]
    action = {"button": "Pilih", "sections": [{"title": "Pilihan", "rows": rows}]}
    return {"type": "interactive", "interactive": {"type": "list", "body": body, "action": action}}
