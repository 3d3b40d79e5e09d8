"""Web workers: one process (`kabashoax web`) or several on one port (`--workers N`, also under `run`).

With several, a supervisor binds the listening socket once and starts N `kabashoax web --fd FD`
children that accept connections from it (the gunicorn model): one accept queue, so a worker that dies
loses only the requests it was handling, the port stays open while `kabashoax.children` restarts it,
and an idle worker takes the next connection. Each worker is the whole web app (console, webhooks,
`/metrics`, `/ready`) with its own search and matching caches, which follow the database before each
use (docs/CONTRACTS.md, "Several processes"). uvicorn's own `--workers` is not used: its manager has no
hook when a worker dies (prometheus-client's `mark_process_dead`), and the children module already
restarts, watches and stops the scheduler and the notifier the same way.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI

from kabashoax.children import Child, stop_all, watch_parent
from knowledge_base import logs
from knowledge_base.settings import get_settings

log = logging.getLogger("kabashoax.workers")

BACKLOG = 2048  # connections the kernel queues for the workers (a viral forward arrives in bursts)
# How long an idle keep-alive connection stays open. Longer than the clients' and proxies' own idle
# timeouts (httpx 5 s, nginx 75 s is the longest common one): the client must be the side that closes,
# else a request it sends on a connection the server closes at that moment fails (uvicorn's 5 s equals
# httpx's; `bench.bench_scale` at 100 chats lost about one request in 2,000 that way).
KEEPALIVE_S = 90


class WorkersRefused(Exception):
    """Several workers were asked for on a database that cannot serve them; the message says why."""


def check_database(workers: int) -> None:
    """Several workers need PostgreSQL: refuse SQLite plainly rather than run badly.

    SQLite takes one writer at a time and every message is written before and after it is answered,
    so a second worker only queues behind the first one's commits (and turns bursts into "database is
    locked" retries); there is nothing to gain and something to lose.
    """
    if workers > 1 and get_settings().sqlalchemy_url.startswith("sqlite"):
        raise WorkersRefused(
            f"--workers {workers} needs PostgreSQL (set DATABASE_URL=postgresql://…): SQLite takes one "
            "writer at a time, so more web workers would only wait for each other's commits. "
            "Use --workers 1 on SQLite."
        )


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from (SO_REUSEADDR: a restart binds at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=BACKLOG)


def web_children(sock: socket.socket, workers: int) -> list[Child]:
    fd = sock.fileno()
    return [Child(f"web-{n}", ["web", "--fd", str(fd)], pass_fds=(fd,)) for n in range(1, workers + 1)]


def supervise(host: str, port: int, workers: int, others: list[Child]) -> None:
    """Start `workers` web children on one socket plus `others`; on SIGTERM/SIGINT stop the web
    workers first (in parallel: each finishes its requests), then the others in order."""
    from bot.settings import get_settings as bot_settings

    if bot_settings().rate_limit_storage.startswith("memory"):
        log.warning(
            "the per-chat rate limit (BOT_RATE_LIMIT) is counted by each of the %d workers apart "
            "(BOT_RATE_LIMIT_STORAGE=memory://): a chat may send up to %d times the limit",
            workers,
            workers,
        )
    try:
        sock = listen(host, port)
    except OSError as exc:  # one line, as uvicorn says it for a single worker
        raise SystemExit(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    web = web_children(sock, workers)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for child in [*others, *web]:
        child.start()
    log.info("serving on http://%s:%d with %d web workers", host, port, workers)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("stopping %d web workers", workers)
        stop_all(web)
        sock.close()
        for child in others:
            child.stop()
    log.info("stopped")


def serve_in_process(app: FastAPI, host: str, port: int) -> None:
    """The web app in this process (one worker: SQLite, development, or one process per container)."""
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default action the process would
    # die before its callers' `finally` (which stops children and Rasa).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(app, host=host, port=port, **_uvicorn_options())


def serve_web(host: str, port: int, workers: int) -> None:
    """`kabashoax web`: the web app alone (no notifier, scheduler or Rasa: run those apart)."""
    check_database(workers)
    from knowledge_base.db import ensure_schema

    ensure_schema()  # SQLite: migrated; PostgreSQL behind: one line saying to run `db upgrade`
    if workers > 1:
        logs.configure("supervisor")
        supervise(host, port, workers, [])
        return
    logs.configure("web")
    app = _app()
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    serve_in_process(app, host, port)


def serve_worker(fd: int) -> None:
    """One web worker (`kabashoax web --fd FD`), accepting on the socket its supervisor passed down."""
    logs.configure("web")
    app = _app()
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    config = uvicorn.Config(app, **_uvicorn_options())
    server = uvicorn.Server(config)
    orphaned = threading.Event()
    watch_parent(orphaned)

    def exit_when_orphaned() -> None:
        orphaned.wait()
        server.should_exit = True

    threading.Thread(target=exit_when_orphaned, name="orphan-exit", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # after uvicorn's graceful shutdown
    server.run(sockets=[socket.socket(fileno=fd)])


def warm_up() -> None:
    """Load the NLU fallback, the embedding model and both indexes now (a thread), so the first
    citizens after a start or restart wait for none of it."""
    from knowledge_base import matching
    from knowledge_base.db import session_scope
    from knowledge_base.search import get_searcher
    from nlu.fallback import get_fallback

    try:
        get_fallback()
        with session_scope() as session:
            get_searcher(session)
            matching.sync(session)
    except Exception:  # not fatal: everything loads on first use instead
        log.exception("warming up failed; models and indexes load on first use")


def _app() -> FastAPI:
    from kabashoax.web import create_app
    from knowledge_base import embeddings
    from knowledge_base.metrics import report_process

    embeddings.configure_threads()  # EMBEDDING_THREADS per query on the request path (default 1)
    report_process("web", metrics_port=False)  # its values are on its own /metrics
    return create_app()


def _uvicorn_options() -> dict[str, Any]:
    """What every web process serves with, one worker or several."""
    from fact_team_console.settings import get_console_settings

    return {
        "proxy_headers": True,
        "forwarded_allow_ips": get_console_settings().forwarded_allow_ips,  # none unless configured
        "log_config": None,
        "timeout_keep_alive": KEEPALIVE_S,
    }
