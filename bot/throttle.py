"""The notifier's outgoing pace: the channels' broadcast limits and the pauses their 429s ask for.

Telegram allows about 30 messages a second overall and about 20 a minute into one group or channel;
the WhatsApp Cloud API about 80 a second per business number. Sends are spaced evenly (a leaky bucket
of one, `aiolimiter`) rather than let through in bursts, so no one-second window holds more than the
configured rate. A 429 pauses the whole channel for its `retry_after`: Telegram's flood control applies
to the bot, not to one chat.

The limits hold per notifier process; run one notifier per bot (conversation replies, sent by the web
process, are not counted here, which is why the defaults stay below the channels' limits).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiolimiter import AsyncLimiter


def _pacer(per_s: float) -> AsyncLimiter | None:
    """One acquisition per 1/per_s seconds; None (no limit) for a rate of 0."""
    return AsyncLimiter(1, 1 / per_s) if per_s > 0 else None


class Throttle:
    def __init__(
        self, per_s: Mapping[str, float], per_chat_per_min: Mapping[str, float] | None = None
    ) -> None:
        """`per_s`: messages a second per channel; `per_chat_per_min`: per group/channel chat."""
        self._overall = {channel: _pacer(rate) for channel, rate in per_s.items()}
        self._chat_rates = dict(per_chat_per_min or {})
        self._chats: dict[tuple[str, str], AsyncLimiter | None] = {}
        self._paused_until: dict[str, float] = {}

    async def wait(self, channel: str, chat: str | None = None) -> None:
        """Until this channel (and, for a group or channel post, that chat) may take one more message."""
        if chat is not None:
            key = (channel, chat)
            if key not in self._chats:
                self._chats[key] = _pacer(self._chat_rates.get(channel, 0) / 60)
            limiter = self._chats[key]
            if limiter is not None:
                await limiter.acquire()
        overall = self._overall.get(channel)
        if overall is not None:
            await overall.acquire()

    def pause(self, channel: str, seconds: float) -> None:
        """The channel said 429: nothing more goes to it for `seconds`."""
        until = time.monotonic() + seconds
        self._paused_until[channel] = max(until, self._paused_until.get(channel, 0.0))

    def paused_for(self, channel: str) -> float:
        """Seconds this channel is still paused (0 when it is not)."""
        return max(self._paused_until.get(channel, 0.0) - time.monotonic(), 0.0)

    def paused(self) -> list[str]:
        return sorted(c for c in self._paused_until if self.paused_for(c) > 0)
