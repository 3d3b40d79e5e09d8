"""`kabashoax run`: everything on one machine with the embedded defaults.

Order matters for a first start offline: schema, then the knowledge base (bundled sample feeds,
indexed before serving so the first citizen gets answers), then the scheduler process (which polls
the trusted sources from then on), Rasa in the background (the bot answers with its fallback
classifier until Rasa is ready), then the web app with the notifier beside it. SIGTERM stops the
web app, then the scheduler and Rasa.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from kabashoax.children import Child
from knowledge_base import embeddings, logs
from knowledge_base.db import migrate, session_scope
from knowledge_base.feeds import ingest_samples
from knowledge_base.search import sync_passages
from knowledge_base.sources import load_specs, sync_sources

log = logging.getLogger("kabashoax.run")


def prepare_knowledge_base() -> int:
    """Migrate, load sources.yaml and the bundled sample feeds, index new passages (the scheduler polls)."""
    migrate()
    with session_scope() as session:
        sync_sources(load_specs(), session=session)
        reports = ingest_samples(session=session)
        session.commit()
        for r in reports:
            if not r.ok:
                log.warning("source %s not ingested: %s", r.source, (r.error or "")[:200])
        indexed = sync_passages(session)
    log.info("knowledge base ready: %d bundled feeds read, %d passages newly indexed", len(reports), indexed)
    return indexed


def start_rasa_in_background() -> dict[str, Any]:
    """Train (if the data changed) and serve Rasa without holding up the web app."""
    from nlu.rasa_service import start_if_installed

    holder: dict[str, Any] = {}

    def target() -> None:
        try:
            holder["server"] = start_if_installed()
        except Exception:  # the bot keeps answering through the fallback classifier
            log.exception("Rasa could not be started; intents come from the fallback classifier")

    thread = threading.Thread(target=target, name="rasa-start", daemon=True)
    thread.start()
    holder["thread"] = thread
    return holder


def warm_fallback_classifier() -> None:
    """Train/load the in-app classifier now, so a Rasa outage never makes a citizen wait for it."""
    from nlu.fallback import get_fallback

    try:
        get_fallback()
    except Exception:
        log.exception("fallback classifier could not be prepared; it will be retried on first use")


def with_notifier(app: FastAPI) -> FastAPI:
    """Run the outbox notifier inside the web app's event loop for the app's lifetime."""
    from bot.delivery import started_senders
    from bot.outbox import Notifier

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        notifier = Notifier(await started_senders())
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run_forever(stop), name="notifier")
        async with inner(a) as state:
            yield state
        stop.set()
        await task

    app.router.lifespan_context = lifespan
    return app


def scheduler_args(*, poll_sources: bool) -> list[str]:
    """The scheduler child's command line (sources.yaml was synced by the start already)."""
    return ["scheduler", "--no-sync", *([] if poll_sources else ["--no-feeds"])]


def run(
    host: str,
    port: int,
    *,
    rasa: bool,
    notifier: bool,
    ingest: bool,
    poll_sources: bool,
    scheduler: bool = True,
) -> None:
    from fact_team_console.settings import get_console_settings
    from kabashoax.web import create_app

    forwarded = get_console_settings().forwarded_allow_ips  # proxies trusted: none unless configured
    logs.configure("web")
    embeddings.configure_threads()  # EMBEDDING_THREADS per query on the request path (default 1)
    if ingest:
        prepare_knowledge_base()
    else:
        migrate()
    children = [Child("scheduler", scheduler_args(poll_sources=poll_sources)).start()] if scheduler else []
    threading.Thread(target=warm_fallback_classifier, name="nlu-fallback", daemon=True).start()
    rasa_holder = start_rasa_in_background() if rasa else {}
    app = create_app()
    if notifier:
        app = with_notifier(app)
    log.info("serving on http://%s:%d (console /, webhooks /webhooks/*, health /health, /ready)", host, port)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default action the process would
    # die before the `finally` below and leave Rasa and the scheduler running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            app, host=host, port=port, proxy_headers=True, forwarded_allow_ips=forwarded, log_config=None
        )
    finally:
        for child in children:
            child.stop()
        server = rasa_holder.get("server")
        if server is not None:
            server.stop()
