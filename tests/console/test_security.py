"""Security of the console: login required everywhere, roles, CSRF and cross-site checks, throttling."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, select

from fact_team_console import routes_admin, routes_api, routes_auth, routes_tickets, workflow
from fact_team_console.settings import ConsoleSettings, get_console_settings
from fact_team_console.users import create_user
from fact_team_console.web import create_app
from fact_team_console.workflow import VerdictForm
from knowledge_base.db import get_session, session_scope
from knowledge_base.models import AuditLog, StaffUser, Verdict
from tests.console.conftest import PASSWORD, csrf_of, login, make_claim

PUBLIC = {"/login", "/health"}
FORM = VerdictForm(
    claim="Air PDAM Kupang tercemar racun",
    rating="HOAKS",
    summary="PDAM Kota Kupang menyatakan air aman diminum; hasil uji laboratorium normal.",
    sources="https://kupangkota.go.id/berita/pdam-air-aman",
)


def console_routes() -> list[APIRoute]:
    """Every route the console installs (read from its routers: FastAPI includes them lazily)."""
    return [
        r
        for m in (routes_auth, routes_tickets, routes_admin, routes_api)
        for r in m.router.routes
        if isinstance(r, APIRoute)
    ]


def test_every_route_without_a_session_is_refused(client: TestClient) -> None:
    checked = 0
    for route in console_routes():
        if route.path in PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in route.methods:
            response = client.request(method, path)
            checked += 1
            if path.startswith("/api/"):
                assert response.status_code in (401, 403), (method, path, response.status_code)
            else:
                # GETs go to the login page; POSTs without a session fail CSRF or the login check.
                assert response.status_code in (303, 401, 403), (method, path, response.status_code)
                if response.status_code == 303:
                    assert response.headers["location"].startswith("/login")
    assert checked >= 20
    assert client.get("/health").json() == {"status": "ok"}


def test_login_sets_a_fresh_httponly_samesite_session(
    client: TestClient, staff: dict[str, StaffUser]
) -> None:
    before = csrf_of(client)
    response = client.post("/login", data={"username": "cek1", "password": PASSWORD, "csrf_token": before})
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    after = csrf_of(client, "/")
    assert after != before  # a new session: a token planted before login is worthless
    assert client.get("/").status_code == 200


def test_wrong_password_is_refused_and_the_account_locks(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    limit = get_console_settings().max_failed_logins
    for _ in range(limit):
        token = csrf_of(client)
        r = client.post(
            "/login", data={"username": "cek1", "password": "salah-sandi-123", "csrf_token": token}
        )
        assert r.status_code == 401
        assert "salah" in r.text
    token = csrf_of(client)
    r = client.post("/login", data={"username": "cek1", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 401, "the right password must not open a locked account"
    session.refresh(staff["cek1"])
    assert staff["cek1"].locked_until is not None
    assert session.exec(select(AuditLog).where(AuditLog.action == "user.locked")).first() is not None


def test_login_is_throttled_per_client_address(
    client: TestClient, staff: dict[str, StaffUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSOLE_LOGIN_RATE_PER_IP", "3/minute")
    get_console_settings.cache_clear()
    try:
        codes = []
        for name in ("a1", "a2", "a3", "a4"):  # different usernames: only the address ties them
            token = csrf_of(client)
            codes.append(
                client.post(
                    "/login", data={"username": name, "password": "x", "csrf_token": token}
                ).status_code
            )
        assert codes == [401, 401, 401, 429]
    finally:
        get_console_settings.cache_clear()


def test_login_redirects_only_to_local_paths(client: TestClient, staff: dict[str, StaffUser]) -> None:
    token = csrf_of(client)
    data = {"username": "cek1", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"}
    assert client.post("/login", data=data).headers["location"] == "/"
    client.cookies.clear()
    token = csrf_of(client)
    data = {**data, "csrf_token": token, "next": "/dashboard"}
    assert client.post("/login", data=data).headers["location"] == "/dashboard"


def test_post_without_csrf_token_is_refused(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Beredar pesan berantai soal bantuan tunai Rp 5 juta dari Pemkot Kupang")
    login(client, "cek1")
    r = client.post(f"/tickets/{claim.id}/notes", data={"text": "catatan dari situs lain"})
    assert r.status_code == 403
    r = client.post(f"/api/tickets/{claim.id}/notes", json={"text": "tanpa token"})
    assert r.status_code == 403
    session.expire_all()
    assert client.get(f"/api/tickets/{claim.id}").json()["notes"] == []
    # htmx and API clients send the token as a header instead
    token = csrf_of(client, "/")
    r = client.post(
        f"/api/tickets/{claim.id}/notes", json={"text": "dengan token"}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 200 and [n["text"] for n in r.json()["notes"]] == ["dengan token"]


def test_cross_site_post_is_refused_even_with_the_token(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Pesan berantai: PLN padamkan listrik se-Kota Kupang tiga hari")
    token = login(client, "cek1")
    data = {"text": "dari situs lain", "csrf_token": token}
    assert (
        client.post(
            f"/tickets/{claim.id}/notes", data=data, headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/tickets/{claim.id}/notes", data=data, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 403
    )
    ok = client.post(
        f"/tickets/{claim.id}/notes",
        data=data,
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    assert ok.status_code == 303
    assert [n["text"] for n in client.get(f"/api/tickets/{claim.id}").json()["notes"]] == ["dari situs lain"]


def test_a_checker_cannot_approve_and_no_one_approves_their_own_draft(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Air PDAM Kupang tercemar racun, jangan diminum", asks=2)
    verdict = workflow.save_draft(claim.id or 0, FORM, user=staff["tinjau1"], session=session, submit=True)
    session.commit()

    token = login(client, "cek2")
    assert client.post(f"/verdicts/{verdict.id}/approve", data={"csrf_token": token}).status_code == 403
    client.cookies.clear()
    token = login(client, "tinjau1")  # the author, although a reviewer
    r = client.post(f"/verdicts/{verdict.id}/approve", data={"csrf_token": token})
    assert r.status_code == 303
    assert "peninjau lain" in client.get(f"/tickets/{claim.id}").text
    session.expire_all()
    assert session.get(Verdict, verdict.id).status == "in_review"


def test_comms_reads_but_cannot_change_tickets(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Vaksin campak di puskesmas Kupang mengandung chip")
    token = login(client, "humas")
    assert client.get(f"/tickets/{claim.id}").status_code == 200
    assert client.get("/dashboard").status_code == 200
    assert (
        client.post(f"/tickets/{claim.id}/notes", data={"text": "x", "csrf_token": token}).status_code == 403
    )
    assert (
        client.post(f"/tickets/{claim.id}/assign", data={"assignee": "me", "csrf_token": token}).status_code
        == 403
    )
    assert client.get("/users").status_code == 403
    assert client.get("/audit").status_code == 403


def test_a_deactivated_account_loses_its_session(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    login(client, "cek1")
    assert client.get("/").status_code == 200
    staff["cek1"].active = False
    session.add(staff["cek1"])
    session.commit()
    assert client.get("/").status_code == 303


def test_pages_send_a_strict_content_security_policy(client: TestClient, staff: dict[str, StaffUser]) -> None:
    login(client, "cek1")
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_login_itself_needs_the_csrf_token(client: TestClient, staff: dict[str, StaffUser]) -> None:
    client.get("/login")
    r = client.post("/login", data={"username": "cek1", "password": PASSWORD})
    assert r.status_code == 403 and "uid" not in r.headers.get("set-cookie", "")


def test_session_cookie_is_secure_in_production(
    session: Session, staff: dict[str, StaffUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fact_team_console.web import create_app
    from knowledge_base.db import get_session
    from knowledge_base.settings import get_settings

    monkeypatch.setenv("KABASHOAX_ENV", "production")
    monkeypatch.setenv("KABASHOAX_SECRET_KEY", "a-long-random-production-secret-for-this-test")
    get_settings.cache_clear()
    try:
        app = create_app()
        app.dependency_overrides[get_session] = lambda: session
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
            token = csrf_of(c)
            r = c.post("/login", data={"username": "cek1", "password": PASSWORD, "csrf_token": token})
            assert r.status_code == 303
            assert "secure" in r.headers["set-cookie"].lower()
    finally:
        get_settings.cache_clear()


# --------------------------------------------------------------------------- forwarded headers (issue 12 #7)


def _login_codes(c: TestClient, attempts: list[tuple[str, str, str | None]]) -> list[int]:
    """POST /login once per (username, password, X-Forwarded-For) and collect the status codes."""
    codes = []
    for username, password, forwarded in attempts:
        token = csrf_of(c)
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        data = {"username": username, "password": password, "csrf_token": token}
        codes.append(c.post("/login", data=data, headers=headers).status_code)
    return codes


@pytest.fixture
def three_per_address(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("CONSOLE_LOGIN_RATE_PER_IP", "3/minute")
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    get_console_settings.cache_clear()
    yield monkeypatch
    get_console_settings.cache_clear()


def _console(session: Session) -> FastAPI:
    app = create_app()  # reads FORWARDED_ALLOW_IPS now
    app.dependency_overrides[get_session] = lambda: session
    return app


def test_a_forged_forwarded_for_gets_no_fresh_login_attempts(
    session: Session, staff: dict[str, StaffUser], three_per_address: pytest.MonkeyPatch
) -> None:
    """A local client rotating X-Forwarded-For after the 429 stays throttled, right password or not."""
    with TestClient(_console(session), follow_redirects=False, client=("127.0.0.1", 41000)) as c:
        tried = [(f"a{i}", "salah-sandi-123", f"198.51.100.{i}") for i in range(3)]
        assert _login_codes(c, tried) == [401, 401, 401]
        assert _login_codes(c, [("cek1", PASSWORD, "198.51.100.99")]) == [429]
        assert c.get("/").status_code == 303  # not logged in


def test_forwarded_for_is_believed_only_from_a_configured_proxy(
    session: Session, staff: dict[str, StaffUser], three_per_address: pytest.MonkeyPatch
) -> None:
    three_per_address.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    get_console_settings.cache_clear()
    app = _console(session)
    with TestClient(app, follow_redirects=False, client=("10.0.0.5", 41000)) as proxy:
        tried = [(f"a{i}", "salah-sandi-123", "203.0.113.7") for i in range(3)]
        assert _login_codes(proxy, tried) == [401, 401, 401]
        # The same client again, with a made-up address in front of the one the proxy appended: 429.
        assert _login_codes(proxy, [("a9", "x", "192.0.2.1, 203.0.113.7")]) == [429]
        # Another client behind the proxy has its own attempts.
        assert _login_codes(proxy, [("cek1", PASSWORD, "203.0.113.8")]) == [303]
    with TestClient(app, follow_redirects=False, client=("192.0.2.50", 41000)) as direct:
        tried = [(f"b{i}", "salah-sandi-123", f"203.0.113.{20 + i}") for i in range(4)]
        assert _login_codes(direct, tried) == [401, 401, 401, 429]  # not a proxy: its own address counts


def test_an_invalid_proxy_list_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("10.0.0.1/8", "proxy.local", "*, 10.0.0.1"):
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", value)
        with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
            ConsoleSettings()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("proxies", ["", "127.0.0.2"])
def test_kabashoax_console_trusts_forwarded_for_only_from_the_configured_proxy(
    app_env: Path, proxies: str
) -> None:
    """The real server as an operator starts it: uvicorn and the console agree on the client address.

    127.0.0.1, which uvicorn alone would trust by default, is a client like any other; 127.0.0.2 is
    the proxy when one is configured.
    """
    with session_scope() as s:
        create_user("cek1", "checker", PASSWORD, session=s)
    port = _free_port()
    env = {**os.environ, "CONSOLE_LOGIN_RATE_PER_IP": "2/minute", "FORWARDED_ALLOW_IPS": proxies}
    if not proxies:
        env.pop("FORWARDED_ALLOW_IPS")
    cmd = [sys.executable, "-m", "kabashoax.cli", "console", "--port", str(port)]
    log = (app_env.parent / "console.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.name
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        def codes(local: str, attempts: list[tuple[str, str, str]]) -> list[int]:
            transport = httpx.HTTPTransport(local_address=local)
            with httpx.Client(base_url=base, transport=transport) as c:
                out = []
                for username, password, forwarded in attempts:
                    page = c.get("/login").text
                    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
                    assert match
                    data = {"username": username, "password": password, "csrf_token": match.group(1)}
                    out.append(
                        c.post("/login", data=data, headers={"X-Forwarded-For": forwarded}).status_code
                    )
                return out

        forged = [
            ("a1", "x", "198.51.100.1"),
            ("a2", "x", "198.51.100.2"),
            ("cek1", PASSWORD, "198.51.100.3"),
        ]
        assert codes("127.0.0.1", forged) == [401, 401, 429]
        proxied = [("a1", "x", "203.0.113.1"), ("a2", "x", "203.0.113.1"), ("cek1", PASSWORD, "203.0.113.2")]
        assert codes("127.0.0.2", proxied) == ([401, 401, 303] if proxies else [401, 401, 429])
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
