"""Delivery to citizens, in one place: what a channel sender is, how it fails, which senders this
process has, and how a worker leases rows so that each is delivered by one worker only.

The adapters (`bot.telegram`, `bot.whatsapp`) implement the senders and raise the errors below; the
notifier (`bot.outbox`) and the late-reply sender (`bot.resend`) lease rows with `lease` and decide
what an error means for the row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col

from bot.dialogue import Reply
from bot.settings import BotSettings, get_settings
from knowledge_base import digest_render
from knowledge_base.models import InboundMessage, Notification

# How the core and the workers open a database session (`knowledge_base.db.session_scope` in production).
SessionFactory = Callable[[], AbstractContextManager[Session]]
# Sends a conversation's replies to one address (the core calls it once per message).
SendReplies = Callable[[str, list[Reply]], Awaitable[None]]


class RetryLater(Exception):
    """The channel asked us to wait (HTTP 429 / Telegram RetryAfter)."""

    def __init__(self, after_s: float, reason: str = "rate limited") -> None:
        super().__init__(reason)
        self.after_s = after_s


class TransientError(Exception):
    """Network trouble or a 5xx: retry with backoff."""


class PermanentError(Exception):
    """The channel refused for good (bot blocked, chat gone, bad request): do not retry."""


class Unreachable(PermanentError):
    """The citizen blocked the bot: nothing more is pushed to them (digests stop) until they write again."""


@dataclass(frozen=True)
class Recipient:
    """A citizen's chat (id or phone number), or the city's Telegram channel (`@name` / `-100…`)."""

    address: str
    channel: str
    last_inbound_at: datetime | None


# Rows of Telegram inline buttons: a URL (a verdict's page) or callback data ("digest:unsub:<id>").
Keyboard = tuple[tuple[digest_render.Button, ...], ...]


@dataclass(frozen=True)
class Notice:
    """What one notification says, rendered at send time (`bot.notices`); each channel takes its part.

    `text` is plain text (no markup: a verdict is shown verbatim). Telegram adds `keyboard` and turns
    link previews off unless `link_preview`. WhatsApp calls `whatsapp(inside_window)` when it is set (a
    digest's own free text or approved template); otherwise it sends `text` as free text inside the
    24-hour window and in the generic notification template outside it.
    """

    text: str
    keyboard: Keyboard = ()
    link_preview: bool = True
    whatsapp: Callable[[bool], digest_render.WhatsAppMessage] | None = None


class ReplySender(Protocol):
    async def send(self, address: str, replies: list[Reply]) -> None:
        """Conversation replies; raises whatever the channel raised (the caller keeps the reply)."""
        ...


class NotificationSender(Protocol):
    async def send_notification(self, to: Recipient, notice: Notice) -> str | None:
        """Deliver; return the channel's message id. Raise RetryLater/TransientError/PermanentError."""
        ...


class ChannelSender(ReplySender, NotificationSender, Protocol):
    """What the notifier loop needs of a channel: notifications, late replies, and a start-up call."""

    async def initialize(self) -> None: ...


def configured_senders(settings: BotSettings | None = None) -> dict[str, ChannelSender]:
    """One sender per channel configured in the settings (a Telegram token, a WhatsApp access token)."""
    from bot.telegram import TelegramNotifier, make_bot  # the adapters import this module
    from bot.whatsapp import WhatsAppClient

    settings = settings or get_settings()
    senders: dict[str, ChannelSender] = {}
    if settings.telegram_bot_token:
        senders["telegram"] = TelegramNotifier(make_bot(settings))
    if settings.whatsapp_access_token:
        senders["whatsapp"] = WhatsAppClient(settings)
    return senders


async def started_senders(settings: BotSettings | None = None) -> dict[str, ChannelSender]:
    """`configured_senders`, each initialised (Telegram calls getMe) and ready to send."""
    senders = configured_senders(settings)
    for sender in senders.values():
        await sender.initialize()
    return senders


def lease(
    session: Session,
    table: type[Notification] | type[InboundMessage],
    due: sa.Select[Any],
    values: dict[str, Any],
    *,
    still: Sequence[sa.ColumnElement[bool]] = (),
) -> list[int]:
    """Mark the rows `due` selects (a SELECT of ids) with `values` and return their ids, sorted.

    One UPDATE … WHERE id IN (due) RETURNING id: atomic on SQLite (one writer), and on PostgreSQL the
    subquery locks `FOR UPDATE SKIP LOCKED`, so concurrent workers never lease the same row. `still`
    re-checks conditions at update time. The caller commits.
    """
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = col(table.id)
    stmt = sa.update(table).where(ids.in_(due.scalar_subquery()), *still).values(values).returning(ids)
    return sorted(session.exec(stmt).scalars().all())
