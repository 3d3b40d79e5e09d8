"""Jinja2 templates (autoescaped: citizen text is never marked safe), filters and flash messages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from fact_team_console.claimreview import rating_info
from fact_team_console.security import csrf_token
from knowledge_base.dates import WITA
from knowledge_base.models import Rating, Role, utcnow

HERE = Path(__file__).resolve().parent

STATUS_LABELS = {
    "new": "Baru",
    "investigating": "Diselidiki",
    "in_review": "Ditinjau",
    "published": "Terbit",
    "rejected": "Ditolak",
    "merged": "Digabung",
    "draft": "Draf",
    "withdrawn": "Ditarik",
}

# Scripts and styles only from our own origin: even an unescaped string could not run code.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=HERE / "templates")


def _local(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if value is None:
        return "–"
    return value.astimezone(WITA).strftime(fmt)


def _ago(value: datetime | None) -> str:
    if value is None:
        return "–"
    minutes = int((utcnow() - value).total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} mnt lalu"
    if minutes < 48 * 60:
        return f"{minutes // 60} jam lalu"
    return f"{minutes // 1440} hari lalu"


def _duration(hours: float | None) -> str:
    """Hours as staff say them: "5,5 jam" under two days, else "3,2 hari"."""
    if hours is None:
        return "–"
    value, unit = (hours, "jam") if hours < 48 else (hours / 24, "hari")
    return f"{value:.1f}".replace(".", ",") + f" {unit}"


def _http_url(value: str | None) -> str:
    """Only http(s) links reach an href: an imported `javascript:` URL must not become clickable."""
    return value if value and value.lower().startswith(("http://", "https://")) else "#"


templates.env.filters["local"] = _local
templates.env.filters["http_url"] = _http_url
templates.env.filters["duration"] = _duration
templates.env.filters["ago"] = _ago
templates.env.filters["status_label"] = lambda s: STATUS_LABELS.get(s, s)
templates.env.filters["tone"] = lambda r: rating_info(r).tone
templates.env.globals["RATINGS"] = [r.value for r in Rating]
templates.env.globals["ROLES"] = [r.value for r in Role]
templates.env.globals["STATUS_LABELS"] = STATUS_LABELS


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page (after a POST-redirect-GET)."""
    request.session.setdefault("flash", [])
    request.session["flash"] = [*request.session["flash"], [kind, text]]


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    ctx = {"csrf": csrf_token(request), "flashes": request.session.pop("flash", []), **(context or {})}
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
