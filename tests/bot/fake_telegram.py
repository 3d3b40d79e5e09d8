"""A local stand-in for the Telegram Bot API (HTTP on 127.0.0.1) that the real PTB client talks to.

It records every call, serves queued updates to getUpdates (long polling), can answer the next N
sendMessage calls with 429 + retry_after, and can hold a call open (to kill a client mid-request).
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


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-token"
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    fail_429: int = 0  # answer this many sendMessage calls with 429
    retry_after: int = 1
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
        if method == "sendMessage":
            with self.lock:
                if self.fail_429 > 0:
                    self.fail_429 -= 1
                    self.calls.append(Call("sendMessage429", params))
                    body = {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {self.retry_after}",
                        "parameters": {"retry_after": self.retry_after},
                    }
                    return JSONResponse(body, 429)
                if int(params.get("chat_id", 0)) in self.blocked_chats:
                    body = {
                        "ok": False,
                        "error_code": 403,
                        "description": "Forbidden: bot was blocked by the user",
                    }
                    return JSONResponse(body, 403)
                done = sum(c.method == "sendMessage" for c in self.calls)
                hang = self.hang_after is not None and done >= self.hang_after
                if hang:
                    self.hanging += 1
            if hang:
                await asyncio.sleep(3600)
        with self.lock:
            self.calls.append(Call(method, params))
        return JSONResponse({"ok": True, "result": self._result(method, params)})

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
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"},
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
