"""The bot tests' settings, envelopes and a recording channel."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bot.core import Envelope
from bot.dialogue import Incoming, Reply
from bot.settings import BotSettings

SECRET = "test-webhook-secret"
WA_SECRET = "test_app_secret_not_real"


def bot_settings(**overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "WHATSAPP_APP_SECRET": WA_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify-me",
        "WHATSAPP_ACCESS_TOKEN": "wa-token",
        "WHATSAPP_PHONE_NUMBER_ID": "1122334455667",
        "WHATSAPP_API_BASE_URL": "http://graph.test/v21.0",
        "BOT_RATE_LIMIT": "1000/minute",
        "BOT_NOTIFY_BACKOFF_BASE_S": 0.0,
        "BOT_NOTIFY_LEASE_S": 30.0,
        "BOT_NOTIFY_CONCURRENCY": 1,  # one send at a time; the tests about concurrency raise it
    }
    values.update(overrides)
    return BotSettings(**values)


class Outbox:
    """Records what the channel would have delivered; fails the first `fail` sends."""

    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[str, list[Reply]]] = []
        self.fail = fail

    async def __call__(self, address: str, replies: list[Reply]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("channel down")
        self.sent.append((address, replies))

    send = __call__  # also usable where a channel object with `send` is expected


def env(ext: str, text: str = "", *, address: str = "555", **kw: Any) -> Envelope:
    """A Telegram message with external id `ext` from `address`."""
    return Envelope("telegram", ext, address, Incoming(text=text, **kw))


# Arbitrary JSON for the webhook property tests, and their budget (the fixtures are reused per example).
FUZZ_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
