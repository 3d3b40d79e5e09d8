"""The staff-only "Coba bot" page: login and CSRF per the console's session contract, same core,
and citizen text shown as text, never as HTML."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlmodel import Session
from starlette.middleware.sessions import SessionMiddleware

import bot.web
from bot.core import BotCore
from bot.runtime import get_core
from knowledge_base.models import StaffUser

CSRF = "csrf-test-token"


@pytest.fixture
async def client(core: BotCore, session: Session) -> AsyncIterator[httpx.AsyncClient]:
    staff = StaffUser(username=f"tester-{id(core)}", password_hash="x")
    session.add(staff)
    session.commit()
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="test")
    app.include_router(bot.web.router)
    app.dependency_overrides[get_core] = lambda: core

    @app.get("/test-login")
    async def login(request: Request) -> dict[str, bool]:  # what the console's /login leaves in the session
        request.session.update({"uid": staff.id, "csrf": CSRF})
        return {"ok": True}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_page_needs_a_staff_session(client: httpx.AsyncClient) -> None:
    resp = await client.get("/coba-bot")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    assert (await client.post("/coba-bot/send", data={"text": "halo", "csrf_token": CSRF})).status_code == 401


async def test_send_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    await client.get("/test-login")
    assert (await client.post("/coba-bot/send", data={"text": "halo"})).status_code == 403
    assert (
        await client.post("/coba-bot/send", data={"text": "halo", "csrf_token": "nope"})
    ).status_code == 403


async def test_staff_chat_with_the_core_and_press_buttons(client: httpx.AsyncClient) -> None:
    await client.get("/test-login")
    resp = await client.post("/coba-bot/send", data={"text": "/start", "csrf_token": CSRF})
    assert resp.status_code == 303
    page = (await client.get("/coba-bot")).text
    assert "Halo! Saya Kabas Hoaks" in page and "Cek kabar" in page
    button = page.split('name="button" value="')[1].split('"')[0]
    await client.post("/coba-bot/send", data={"button": button, "csrf_token": CSRF})
    assert "Silakan kirim atau teruskan kabar" in (await client.get("/coba-bot")).text


async def test_citizen_text_is_escaped(client: httpx.AsyncClient) -> None:
    await client.get("/test-login")
    evil = '<script>alert("x")</script> jam buang sampah?'
    await client.post("/coba-bot/send", data={"text": evil, "csrf_token": CSRF})
    page = (await client.get("/coba-bot")).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
