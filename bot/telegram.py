"""Telegram channel: translates PTB updates into envelopes and replies into Bot API calls.

The same translation serves long polling (`kabashoax bot telegram`) and the webhook route; the
conversation itself lives in `bot.core`.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any, TypeGuard

# PTB 22.2+ reports time periods (RetryAfter.retry_after, …) as timedelta when opted in, the coming
# default; without it every 429 raises a deprecation warning inside PTB itself.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.core import BotCore, Envelope, Turn
from bot.delivery import (
    Keyboard,
    Notice,
    PermanentError,
    Recipient,
    RetryLater,
    TransientError,
    Unreachable,
)
from bot.dialogue import Incoming, Reply, parse_command
from bot.edge import clean_text
from bot.settings import BotSettings

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines contain the bot token

CHANNEL = "telegram"
MAX_TEXT = 4096
MEDIA_KINDS = ("photo", "voice", "audio", "video", "video_note", "animation", "sticker", "document")
OTHER_KINDS = ("location", "contact", "poll", "venue", "dice")


class UnreadableUpdate(ValueError):
    """An update whose parts are not of the types the Bot API documents."""


MAX_ID = 2**63  # Bot API ids fit in 64 bits; a larger number is not Telegram's


def is_update_object(data: object) -> TypeGuard[dict[str, Any]]:
    """The shape every Bot API update has: an object with a non-negative integer `update_id`."""
    if not isinstance(data, dict):
        return False
    uid = data.get("update_id")
    return isinstance(uid, int) and not isinstance(uid, bool) and 0 <= uid < MAX_ID


def read_update(data: dict[str, Any], bot: Bot) -> Update | None:
    """The update, or None (logged) when PTB or `to_envelope` cannot read it: such an update is
    acknowledged and dropped, since Telegram would redeliver a refused one forever."""
    try:
        update = Update.de_json(data, bot)
        to_envelope(update)
    except Exception as exc:  # PTB's de_json raises whatever the malformed part makes it raise
        log.warning("telegram update %s not readable, ignored: %s", data.get("update_id"), type(exc).__name__)
        return None
    return update


def to_envelope(update: Update) -> Envelope | None:
    """The citizen action in an update, or None for updates that are not a private chat message.
    Raises `UnreadableUpdate` for parts of the wrong type; text is cleaned (`bot.edge.clean_text`)."""
    ext = f"u{update.update_id}"
    if update.callback_query is not None:
        cq = update.callback_query
        who = cq.message.chat.id if cq.message is not None else cq.from_user.id
        return Envelope(
            CHANNEL, ext, _id(who), Incoming(button=clean_text(_str(cq.data))), {"kind": "button"}
        )
    msg = update.message or update.edited_message
    if msg is None or msg.chat.type != "private":
        return None
    return Envelope(CHANNEL, ext, _id(msg.chat.id), _incoming(msg))


def _id(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not -MAX_ID < value < MAX_ID:
        raise UnreadableUpdate("chat id is not a 64-bit integer")
    return str(value)


def _str(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnreadableUpdate("text is not a string")
    return value


def _incoming(msg: Message) -> Incoming:
    media = next((k for k in MEDIA_KINDS + OTHER_KINDS if getattr(msg, k, None)), None)
    text = clean_text(_str(msg.text) or _str(msg.caption))
    command, rest = parse_command(text) if msg.text else (None, text)
    return Incoming(
        text=rest if command else text,
        command=command,
        media=media,
        forwarded=msg.forward_origin is not None,
    )


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    """Short labels (numbers, 👍/👎) share a row; long ones get their own."""
    if not reply.buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    for b in reply.buttons:
        button = InlineKeyboardButton(b.label, callback_data=b.data)
        if len(b.label) <= 18 and len(row) < 4:
            row.append(button)
            continue
        if row:
            rows.append(row)
            row = []
        rows.append([button])
    if row:
        rows.append(row)
    return InlineKeyboardMarkup(rows)


async def send_replies(bot: Bot, address: str, replies: list[Reply]) -> None:
    for reply in replies:
        await bot.send_message(chat_id=int(address), text=reply.text[:MAX_TEXT], reply_markup=_markup(reply))


class TelegramChannel:
    """The PTB bot plus the core: `handle_update` raises when delivery fails, so a webhook can
    answer 500 and Telegram redelivers (the stored replies are then re-sent, not recomputed)."""

    def __init__(self, bot: Bot, core: BotCore) -> None:
        self.bot = bot
        self.core = core

    async def send(self, address: str, replies: list[Reply]) -> None:
        await send_replies(self.bot, address, replies)

    async def handle_update(self, update: Update) -> Turn | None:
        env = to_envelope(update)
        if env is None:
            log.debug("ignored update %s", update.update_id)
            return None
        if update.callback_query is not None:
            try:
                await update.callback_query.answer()
            except TelegramError as exc:  # a too-old query cannot be answered; the reply still goes out
                log.info("callback query of update %s not answered: %s", update.update_id, exc)
        return await self.core.handle(env, self.send)


def inline_keyboard(keyboard: Keyboard) -> InlineKeyboardMarkup | None:
    """A notification's buttons: links (a verdict's page) and callbacks ("Berhenti langganan")."""
    if not keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.label, url=b.url)
                if b.url
                else InlineKeyboardButton(b.label, callback_data=b.data)
                for b in row
            ]
            for row in keyboard
        ]
    )


def chat_id(address: str) -> int | str:
    """A citizen's or group's numeric chat id, or a public channel's `@username` as it is."""
    try:
        return int(address)
    except ValueError:
        return address


NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class TelegramNotifier:
    """The notifier's view of Telegram: Bot API errors mapped to retry decisions."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def initialize(self) -> None:
        """PTB's getMe, once, before the first send."""
        await self.bot.initialize()

    async def send(self, address: str, replies: list[Reply]) -> None:
        """Conversation replies that were stored but not delivered (see `bot.resend`)."""
        await send_replies(self.bot, address, replies)

    async def send_notification(self, to: Recipient, notice: Notice) -> str | None:
        """One plain-text message (no parse mode), with the notice's inline buttons if any."""
        try:
            msg = await self.bot.send_message(
                chat_id=chat_id(to.address),
                text=notice.text[:MAX_TEXT],
                reply_markup=inline_keyboard(notice.keyboard),
                link_preview_options=None if notice.link_preview else NO_PREVIEW,
            )
        except RetryAfter as exc:
            raise RetryLater(_seconds(exc), "telegram flood control") from exc
        except Forbidden as exc:  # blocked by the citizen (for a channel post: the bot is not its admin)
            raise Unreachable(f"telegram: Forbidden: {exc.message}") from exc
        except BadRequest as exc:  # chat gone, message refused
            raise PermanentError(f"telegram: BadRequest: {exc.message}") from exc
        except InvalidToken as exc:  # configuration problem: keep the row, do not echo the token
            raise TransientError("telegram: invalid token") from exc
        except NetworkError as exc:  # timeouts, 5xx, connection errors
            raise TransientError(f"telegram: {type(exc).__name__}") from exc
        except TelegramError as exc:  # a group that became a supergroup, …: retrying changes nothing
            raise PermanentError(f"telegram: {type(exc).__name__}: {exc.message}") from exc
        return str(msg.message_id)


def _seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return max(value.total_seconds() if isinstance(value, timedelta) else float(value), 1.0)


def make_bot(settings: BotSettings) -> Bot:
    return Bot(settings.telegram_bot_token, base_url=settings.telegram_api_base_url)


def build_application(
    settings: BotSettings, core: BotCore, *, polling: bool = True
) -> Application[Any, Any, Any, Any, Any, Any]:
    """A PTB application whose one handler passes every update to the core."""
    builder = (
        Application.builder().token(settings.telegram_bot_token).base_url(settings.telegram_api_base_url)
    )
    if not polling:
        builder = builder.updater(None)
    app = builder.concurrent_updates(8).build()
    channel = TelegramChannel(app.bot, core)
    app.bot_data["channel"] = channel

    async def on_update(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update):
            await channel.handle_update(update)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = update.update_id if isinstance(update, Update) else None
        # The type only: some PTB errors (InvalidToken) carry the token in their message.
        err = context.error
        log.error(
            "telegram update %s failed: %s",
            uid,
            type(err).__name__,
            exc_info=not isinstance(err, TelegramError),
        )

    app.add_handler(TypeHandler(Update, on_update))
    app.add_error_handler(on_error)
    return app
