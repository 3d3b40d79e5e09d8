"""A stand-in for Meta's Graph API (through `httpx.MockTransport`) that the real WhatsApp client posts to."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.whatsapp import WhatsAppClient
from tests.helpers.bot import bot_settings


class Graph:
    """Records message posts and answers like Meta does: a message id, or the error set in `error`."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.error: tuple[int, int] | None = None  # (HTTP status, Meta error code)

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer wa-token"
        assert request.url.path == "/v21.0/1122334455667/messages"
        self.posts.append(json.loads(request.content))
        if self.error is not None:
            status, code = self.error
            return httpx.Response(status, json={"error": {"code": code, "message": f"(#{code}) limit hit"}})
        return httpx.Response(200, json={"messages": [{"id": f"wamid.out{len(self.posts)}"}]})

    def client(self) -> WhatsAppClient:
        """The real client with the tests' settings, posting here."""
        return WhatsAppClient(bot_settings(), httpx.AsyncClient(transport=httpx.MockTransport(self.handler)))
