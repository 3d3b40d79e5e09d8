"""Login, logout and health: the only console routes reachable without a session (besides static files)."""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import HTMLResponse, Response

from fact_team_console.security import (
    DbSession,
    PasswordField,
    UsernameField,
    client_address,
    csrf_protect,
    login_allowed_from,
)
from fact_team_console.templating import render
from fact_team_console.users import authenticate

log = logging.getLogger(__name__)
router = APIRouter()


def _safe_next(
    target: str,
) -> str:
    """Only same-site paths: an open redirect after login would help phishing."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


@router.get("/health", tags=["health"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/login", include_in_schema=False)
def login_page(
    request: Request,
    next: str = "/",
) -> HTMLResponse:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", include_in_schema=False, dependencies=[Depends(csrf_protect)])
def login(
    request: Request,
    session: DbSession,
    username: UsernameField = "",
    password: PasswordField = "",
    next: str = Form("/", max_length=1000),
) -> Response:
    if not login_allowed_from(client_address(request)):
        log.warning("login throttled for client address")
        context = {
            "next": _safe_next(next),
            "error": "Terlalu banyak percobaan. Coba lagi beberapa menit lagi.",
            "username": username,
        }
        return render(request, "login.html", context, status_code=429)
    user = authenticate(username, password, session=session)
    session.commit()
    if user is None:
        context = {
            "next": _safe_next(next),
            "error": "Nama pengguna atau kata sandi salah, atau akun terkunci.",
            "username": username,
        }
        return render(request, "login.html", context, status_code=401)
    request.session.clear()  # a fresh session on login: no fixation of a pre-login cookie
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    log.info("staff login user_id=%s", user.id)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(csrf_protect)])
def logout(
    request: Request,
) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
