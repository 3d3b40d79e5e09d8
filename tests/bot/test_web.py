"""The staff-only "Coba bot" page in the composed app: the console's own login, CSRF check, layout and
security headers, the same core, and citizen text shown as text, never as HTML."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import Session, select

from bot.core import BotCore
from bot.runtime import get_core
from fact_team_console.passwords import hash_password
from fact_team_console.security import reset_login_limits
from fact_team_console.templating import SECURITY_HEADERS
from kabashoax.web import create_app
from knowledge_base.db import get_session
from knowledge_base.models import InboundMessage, StaffUser

PASSWORD = "Coba-bot-2026"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
STYLESHEET_RE = re.compile(r'rel="stylesheet" href="([^"]+)"')


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: once per run


@pytest.fixture
def staff(session: Session, password_hash: str) -> StaffUser:
    user = StaffUser(username=f"penguji-{id(session)}", role="checker", password_hash=password_hash)
    session.add(user)
    session.commit()
    return user


@pytest.fixture
async def client(core: BotCore, session: Session) -> AsyncIterator[httpx.AsyncClient]:
    reset_login_limits()
    app = create_app()
    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[get_core] = lambda: core
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    reset_login_limits()


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    match = CSRF_RE.search((await client.get(path)).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def login(client: httpx.AsyncClient, user: StaffUser) -> str:
    """Through the console's login form, like a browser; returns the session's CSRF token."""
    form = {"username": user.username, "password": PASSWORD, "csrf_token": await csrf_of(client, "/login")}
    assert (await client.post("/login", data=form)).status_code == 303
    return await csrf_of(client, "/coba-bot")


def stored(session: Session) -> int:
    return len(session.exec(select(InboundMessage).where(InboundMessage.channel == "web")).all())


async def test_page_needs_a_staff_session(client: httpx.AsyncClient, session: Session) -> None:
    resp = await client.get("/coba-bot")
    assert resp.status_code == 303 and resp.headers["location"] == "/login?next=/coba-bot"
    # No session, so no CSRF token either: refused before the core sees anything.
    assert (await client.post("/coba-bot/send", data={"text": "halo", "csrf_token": "x"})).status_code == 403
    assert stored(session) == 0


async def test_send_needs_the_csrf_token(
    client: httpx.AsyncClient, staff: StaffUser, session: Session
) -> None:
    await login(client, staff)
    assert (await client.post("/coba-bot/send", data={"text": "halo"})).status_code == 403
    assert (
        await client.post("/coba-bot/send", data={"text": "halo", "csrf_token": "nope"})
    ).status_code == 403
    assert stored(session) == 0


async def test_page_has_the_console_layout_and_security_headers(
    client: httpx.AsyncClient, staff: StaffUser
) -> None:
    await login(client, staff)
    page, console = await client.get("/coba-bot"), await client.get("/")
    assert page.status_code == console.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == console.headers[name] == value, name
    assert staff.username in page.text and 'href="/dashboard"' in page.text  # the console's header
    (css,) = [h for h in STYLESHEET_RE.findall(page.text) if h.startswith("/coba-bot/static/")]
    assert (await client.get(css)).headers["content-type"].startswith("text/css")


async def test_staff_chat_with_the_core_and_press_buttons(
    client: httpx.AsyncClient, staff: StaffUser
) -> None:
    csrf = await login(client, staff)
    resp = await client.post("/coba-bot/send", data={"text": "/start", "csrf_token": csrf})
    assert resp.status_code == 303
    page = (await client.get("/coba-bot")).text
    assert "Halo! Saya Kabas Hoaks" in page and "Cek kabar" in page
    button = page.split('name="button" value="')[1].split('"')[0]
    await client.post("/coba-bot/send", data={"button": button, "csrf_token": csrf})
    assert "Silakan kirim atau teruskan kabar" in (await client.get("/coba-bot")).text


async def test_citizen_text_is_escaped(client: httpx.AsyncClient, staff: StaffUser) -> None:
    csrf = await login(client, staff)
    evil = '<script>alert("x")</script> jam buang sampah?'
    await client.post("/coba-bot/send", data={"text": evil, "csrf_token": csrf})
    page = (await client.get("/coba-bot")).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
