"""Who may do what: the logged-in user, role checks, CSRF and cross-site checks, login throttling.

Every console route depends on `current_user` (or a `require_roles` variant); every state-changing
route also depends on `csrf_protect`. The session keys follow the contract shared with the bot's
/coba-bot page: `session["uid"]` and `session["csrf"]`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Path, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlmodel import Session

from fact_team_console.settings import get_console_settings
from knowledge_base.db import get_session
from knowledge_base.models import Role, StaffUser

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAuthenticatedError(Exception):
    """No valid staff session: HTML requests go to /login, API requests get 401."""


class ForbiddenError(Exception):
    """Logged in, but the role (or a cross-site check) does not allow this request."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (the login form needs one too)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def current_user(request: Request, session: Annotated[Session, Depends(get_session)]) -> StaffUser:
    uid = request.session.get("uid")
    user = session.get(StaffUser, uid) if isinstance(uid, int) else None
    if user is None or not user.active:
        request.session.pop("uid", None)
        raise NotAuthenticatedError()
    return user


def require_roles(*roles: Role) -> Callable[..., StaffUser]:
    """A dependency that lets admins and the given roles through."""
    allowed = {Role.admin, *roles}

    def dependency(user: Annotated[StaffUser, Depends(current_user)]) -> StaffUser:
        if user.role not in allowed:
            raise ForbiddenError(f"role {user.role} may not do this")
        return user

    return dependency


def _same_origin(request: Request, origin: str) -> bool:
    if origin in get_console_settings().trusted_origins:
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return bool(parts.netloc) and parts.netloc == host


async def csrf_protect(request: Request) -> None:
    """Refuse unsafe requests that come from another site or lack the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise ForbiddenError("cross-site request refused")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and not _same_origin(request, origin):
        raise ForbiddenError("cross-origin request refused")
    if origin == "null":
        raise ForbiddenError("cross-origin request refused")
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise ForbiddenError("missing or wrong CSRF token")


def client_address(request: Request) -> str:
    """The client's address for the per-address login limit.

    A forwarded address counts only when a proxy in `FORWARDED_ALLOW_IPS` sent it: `web.install`
    resolves it with uvicorn's own ProxyHeadersMiddleware from that setting, and the servers
    (`kabashoax console`, `kabashoax run`) give uvicorn the same list, so both agree.
    """
    return request.client.host if request.client else "unknown"


@lru_cache
def _ip_limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(MemoryStorage())


def login_allowed_from(ip: str) -> bool:
    """Count one login attempt from this address; False once it exceeds the per-address rate."""
    limit = parse(get_console_settings().login_rate_per_ip)
    return _ip_limiter().hit(limit, "console-login", ip)


def reset_login_limits() -> None:
    """Forget all per-address counts (tests; an admin restart does the same)."""
    _ip_limiter.cache_clear()


MAX_ID = 2_147_483_647  # INTEGER range on both databases: a bigger id is a 422, never a 500
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The staff login fields, one limit for the login form and the admin's new-user form.
UsernameField = Annotated[str, Form(max_length=200)]
PasswordField = Annotated[str, Form(max_length=1000)]
DbSession = Annotated[Session, Depends(get_session)]
CurrentUser = Annotated[StaffUser, Depends(current_user)]
# Who may work tickets (triage, notes, drafts), review (publish, reject, correct), and administer.
Worker = Annotated[StaffUser, Depends(require_roles(Role.checker, Role.reviewer))]
Reviewer = Annotated[StaffUser, Depends(require_roles(Role.reviewer))]
Admin = Annotated[StaffUser, Depends(require_roles())]
