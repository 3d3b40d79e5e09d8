"""The console's FastAPI wiring: `install(app)` joins the combined app; `create_app()` runs it alone."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from fact_team_console import (
    routes_admin,
    routes_api,
    routes_auth,
    routes_digest,
    routes_public,
    routes_tickets,
)
from fact_team_console.security import ForbiddenError, NotAuthenticatedError
from fact_team_console.settings import get_console_settings
from fact_team_console.templating import HERE, render
from knowledge_base.settings import get_settings


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


async def _not_authenticated(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": "login required"}, status_code=401)
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, ForbiddenError) else "forbidden"
    if _wants_json(request) or "uid" not in request.session:
        return JSONResponse({"detail": reason}, status_code=403)
    return render(request, "forbidden.html", {"reason": reason}, status_code=403)


def install(app: FastAPI) -> None:
    """Add sessions, static files, login/logout/health and the console pages and API to `app`."""
    settings, console = get_settings(), get_console_settings()
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=console.session_cookie,
        max_age=console.session_max_age_s,
        same_site="lax",
        https_only=settings.environment == "production",
    )
    # Pages and htmx (52 KB) shrink 3-4x: it matters on a phone on a slow connection.
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(NotAuthenticatedError, _not_authenticated)
    app.add_exception_handler(ForbiddenError, _forbidden)
    app.add_exception_handler(routes_public.Missing, routes_public.missing_page)
    for module in (routes_auth, routes_tickets, routes_admin, routes_api, routes_digest, routes_public):
        app.include_router(module.router)
    # Outermost: the client address every route sees, believing forwarded headers only from the
    # configured proxies (the same setting the servers give uvicorn; none by default).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=console.forwarded_allow_ips)


def create_app() -> FastAPI:
    """The console on its own (tests, or serving before the combined app exists)."""
    # No public schema or docs: every route but login and health needs a session (tests read app.openapi()).
    app = FastAPI(title="Kabashoax fact team console", docs_url=None, redoc_url=None, openapi_url=None)
    install(app)
    return app
