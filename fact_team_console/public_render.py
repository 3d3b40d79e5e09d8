"""Rendering of the public pages: the console's autoescaped templates, but no session, no CSRF, no script.

Public responses never touch the session (so they set no cookie), carry a CSP that allows no script
at all (JSON-LD is data, not script, and is not blocked by it) and may be cached by browsers and
shared caches when the request carried no cookie.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import HTMLResponse, Response

from fact_team_console.templating import templates
from knowledge_base.dates import format_date
from knowledge_base.digest_render import shorten
from knowledge_base.digest_settings import get_digest_settings

PUBLIC_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Vary": "Cookie",
}

templates.env.filters["tanggal"] = format_date
templates.env.filters["shorten"] = shorten


# An image opened on its own: the browser's viewer styles it inline; nothing can run in it.
IMAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def public_headers(request: Request, response: Response, max_age: int = 300) -> Response:
    """Security headers; cacheable for everyone unless the request carried a (staff) cookie."""
    response.headers.update(PUBLIC_HEADERS)
    if response.media_type and response.media_type.startswith("image/"):
        response.headers["Content-Security-Policy"] = IMAGE_CSP
    shared = "cookie" not in request.headers
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if shared else "private, max-age=60"
    return response


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    settings = get_digest_settings()
    ctx = {"site": settings, **context}
    response: HTMLResponse = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    return public_headers(request, response, max_age=300 if status_code == 200 else 60)
