"""`kabashoax run`: everything on one machine with the embedded defaults.

Order matters for a first start offline: schema, then the knowledge base (bundled sample feeds,
indexed before serving so the first citizen gets answers), then the scheduler process (which polls
the trusted sources from then on), Rasa in the background (the bot answers with its fallback
classifier until Rasa is ready), then the web app. With one worker (the default, and the only choice
on SQLite) the web app runs in this process with the notifier in its event loop; with `--workers N`
(PostgreSQL) this process only supervises: N web workers on one port, one notifier process, the
scheduler (`kabashoax.workers`). SIGTERM stops the web app (every worker), then the notifier, the
scheduler and Rasa.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from kabashoax.children import Child
from kabashoax.workers import check_database, serve_in_process, supervise
from knowledge_base import embeddings, logs
from knowledge_base.db import migrate, session_scope
from knowledge_base.sources import load_specs, sync_sources

log = logging.getLogger("kabashoax.run")


def prepare_knowledge_base() -> int:
    """Migrate, load sources.yaml and the bundled sample feeds, index new passages (the scheduler polls)."""
    from knowledge_base.feeds import ingest_samples
    from knowledge_base.search import sync_passages

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


def prepare(ingest: bool) -> None:
    """Everything before serving that loads models: the knowledge base, the fallback classifier."""
    if ingest:
        prepare_knowledge_base()
    else:
        migrate()
    warm_fallback_classifier()


def _prepare_apart(ingest: bool) -> None:
    """`prepare` in a process of its own, so the supervisor never holds the models (≈0.5 GB) the
    workers load anyway; its cached fallback model is what every worker then loads."""
    process = multiprocessing.get_context("spawn").Process(
        target=_prepare_child, args=(ingest,), name="prepare"
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"preparing the knowledge base failed (exit status {process.exitcode}); see the log")


def _prepare_child(ingest: bool) -> None:
    logs.configure("supervisor")
    prepare(ingest)


def with_notifier(app: FastAPI) -> FastAPI:
    """Run the outbox notifier inside the web app's event loop for the app's lifetime."""
    from bot.delivery import started_senders
    from bot.outbox import Notifier
    from knowledge_base.metrics import report_process

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        report_process("notifier", metrics_port=False)
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
    workers: int = 1,
) -> None:
    check_database(workers)  # before any work: several workers need PostgreSQL
    children = [Child("scheduler", scheduler_args(poll_sources=poll_sources))] if scheduler else []
    if workers > 1:
        logs.configure("supervisor")
        _prepare_apart(ingest)
        rasa_holder = start_rasa_in_background() if rasa else {}
        try:
            supervise(
                host,
                port,
                workers,
                [*children, *([Child("notifier", ["bot", "notify"])] if notifier else [])],
            )
        finally:
            _stop_rasa(rasa_holder)
        return
    logs.configure("web")
    embeddings.configure_threads()  # EMBEDDING_THREADS per query on the request path (default 1)
    if ingest:
        prepare_knowledge_base()
    else:
        migrate()
    from kabashoax.web import create_app
    from knowledge_base.metrics import report_process

    for child in children:
        child.start()
    threading.Thread(target=warm_fallback_classifier, name="nlu-fallback", daemon=True).start()
    rasa_holder = start_rasa_in_background() if rasa else {}
    report_process("web", metrics_port=False)
    app = create_app()
    if notifier:
        app = with_notifier(app)
    log.info("serving on http://%s:%d (console /, webhooks /webhooks/*, health /health, /ready)", host, port)
    try:
        serve_in_process(app, host, port)
    finally:
        for child in children:
            child.stop()
        _stop_rasa(rasa_holder)


def _stop_rasa(holder: dict[str, Any]) -> None:
    server = holder.get("server")
    if server is not None:
        server.stop()
