"""The one web app: the console's routes and the bot's webhooks and "Coba bot" page."""

from __future__ import annotations

from fastapi import FastAPI

import bot.web
import fact_team_console.web
import kabashoax.monitoring


def create_app() -> FastAPI:
    """Console (login, sessions, CSRF, health) plus the bot's routes, mounted side by side."""
    app = FastAPI(title="Kabashoax", docs_url=None, redoc_url=None, openapi_url=None)
    fact_team_console.web.install(app)
    app.include_router(bot.web.router)
    app.include_router(kabashoax.monitoring.router)  # /metrics (loopback or token), /ready
    return app
