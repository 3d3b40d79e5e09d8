"""A local stand-in for the Telegram Bot API (HTTP on 127.0.0.1) that the real PTB client talks to.

It records every call, serves queued updates to getUpdates (long polling), can answer the next N
sendMessage calls with 429 + retry_after, or every call beyond a rate (flood control), and can then
refuse every sendMessage until retry_after has passed, as Telegram does; it can hold a call open
(to kill a client mid-request). Chats are numeric ids or a public channel's `@username`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nlu.rasa_service import free_port

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Kabas", "username": "kabas_test_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = 0.0  # time.monotonic() when it arrived
    early: bool = False  # a 429 for a call made before an earlier 429's retry_after had passed


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-token"
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    fail_429: int = 0  # answer this many sendMessage calls with 429
    retry_after: int = 1
    flood_per_s: int | None = None  # a sendMessage beyond this many in the last second gets 429
    flood_wait: bool = False  # after a 429, refuse every sendMessage until retry_after has passed
    flood_until: float = 0.0
    blocked_chats: set[int] = field(default_factory=set)  # these citizens blocked the bot: 403
    hang_after: int | None = None  # sendMessage calls after this many successful ones never return
    hanging: int = 0  # calls being held open now
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [c.params for c in self.calls if c.method == "sendMessage"]

    def push_update(self, update: dict[str, Any]) -> None:
        with self.lock:
            self.updates.append(update)

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        params = await _params(request)
        if method == "getUpdates":
            return JSONResponse({"ok": True, "result": await self._get_updates(params)})
        now = time.monotonic()
        if method == "sendMessage":
            with self.lock:
                early = self.flood_wait and now < self.flood_until
                if early or self.fail_429 > 0 or self._flooded(now):
                    if not early:
                        self.fail_429 = max(self.fail_429 - 1, 0)
                        self.flood_until = now + self.retry_after
                    self.calls.append(Call("sendMessage429", params, now, early))
                    body = {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {self.retry_after}",
                        "parameters": {"retry_after": self.retry_after},
                    }
                    return JSONResponse(body, 429)
                if _chat(params) in self.blocked_chats:
                    body = {
                        "ok": False,
                        "error_code": 403,
                        "description": "Forbidden: bot was blocked by the user",
                    }
                    return JSONResponse(body, 403)
                hang = self.hang_after is not None and self._accepted() >= self.hang_after
                if hang:
                    self.hanging += 1
            if hang:
                await asyncio.sleep(3600)
        with self.lock:
            self.calls.append(Call(method, params, now))
        return JSONResponse({"ok": True, "result": self._result(method, params)})

    def _accepted(self) -> int:
        return sum(c.method == "sendMessage" for c in self.calls)

    def _flooded(self, now: float) -> bool:
        if self.flood_per_s is None:
            return False
        recent = sum(c.method == "sendMessage" and c.at > now - 1.0 for c in self.calls)
        return recent >= self.flood_per_s

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self.lock:
                pending = [u for u in self.updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(0.05)

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "sendMessage":
            chat = _chat(params)
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": (
                    {"id": chat, "type": "private"}
                    if isinstance(chat, int)
                    else {"id": -1001000000001, "type": "channel", "username": chat.lstrip("@")}
                ),
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
        return True  # answerCallbackQuery, deleteWebhook, setWebhook, …

    def start(self) -> FakeTelegram:
        self.port = free_port()
        app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "fake Bot API did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


def _chat(params: dict[str, Any]) -> int | str:
    """A numeric chat id, or a channel's `@username`."""
    value = str(params.get("chat_id", 0))
    return value if value.startswith("@") else int(value)


async def _params(request: Request) -> dict[str, Any]:
    """PTB posts form fields whose non-string values are JSON-encoded."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return await request.json()
    form = await request.form()
    out: dict[str, Any] = {}
    for key, value in form.items():
        try:
            out[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        except ValueError:
            out[key] = value
    return out
