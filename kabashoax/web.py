"""The one web app: the console's routes and the bot's webhooks and "Coba bot" page."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, FileSystemLoader

import bot.web
import fact_team_console.web
import kabashoax.monitoring
from fact_team_console.security import csrf_protect, current_user
from fact_team_console.templating import render, templates


def create_app() -> FastAPI:
    """Console (login, sessions, CSRF, health) plus the bot's routes, mounted side by side."""
    app = FastAPI(title="Kabashoax", docs_url=None, redoc_url=None, openapi_url=None)
    fact_team_console.web.install(app)
    app.include_router(bot.web.router)
    give_bot_pages_the_console_login(app)
    app.include_router(kabashoax.monitoring.router)  # /metrics (loopback or token), /ready
    return app


def give_bot_pages_the_console_login(app: FastAPI) -> None:
    """/coba-bot behind the console's own login and CSRF check, rendered by the console's renderer
    (its layout and security headers): one staff login, with no copy of it in the bot."""
    app.dependency_overrides[bot.web.staff_user] = current_user
    app.dependency_overrides[bot.web.csrf_check] = csrf_protect
    app.dependency_overrides[bot.web.page_renderer] = lambda: render
    app.mount(bot.web.STATIC_PATH, StaticFiles(directory=bot.web.STATIC_DIR), name="bot")
    env = templates.env
    if not isinstance(env.loader, ChoiceLoader) and env.loader is not None:  # once per process
        env.loader = ChoiceLoader([env.loader, FileSystemLoader(bot.web.TEMPLATE_DIR)])
