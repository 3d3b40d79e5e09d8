"""The process-wide bot objects the web routes and CLI share, built lazily on first use.

They are FastAPI dependencies, so tests replace them with `app.dependency_overrides`.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from bot.core import BotCore, default_services
from bot.settings import get_settings
from bot.telegram import TelegramChannel, make_bot
from bot.whatsapp import WhatsAppClient

_telegram: TelegramChannel | None = None
_telegram_lock = asyncio.Lock()


@lru_cache
def get_core() -> BotCore:
    return BotCore(default_services())


async def get_telegram() -> TelegramChannel:
    """The Bot (initialised once: PTB calls getMe) with the shared core."""
    global _telegram
    async with _telegram_lock:
        if _telegram is None:
            bot = make_bot(get_settings())
            await bot.initialize()
            _telegram = TelegramChannel(bot, get_core())
    return _telegram


@lru_cache
def get_whatsapp() -> WhatsAppClient:
    return WhatsAppClient(get_settings())
