"""Prometheus metrics of the whole service, defined in one place (bot and console may import them).

Counters and histograms are incremented where things happen (the bot's through `bot.metrics_hooks`).
With `PROMETHEUS_MULTIPROC_DIR` set (`kabashoax run` and `kabashoax web --workers N` set it for
themselves and their children), every process writes its values to files there and `/metrics` adds them
up, so one scrape of any web worker shows every worker, the notifier and the scheduler. Processes that
share no directory with a web app (containers) serve their own values on `METRICS_PORT` instead
(`serve_metrics_port`). State that lives in the database (outbox, sources, index size) is read at scrape
time by `DatabaseCollector`, so it is right whichever process changed it.

NLU metrics are nlu's own (`nlu/client.py`: `kabashoax_nlu_parsed_total{source}`,
`kabashoax_nlu_rasa_errors_total{reason}`, `kabashoax_nlu_parse_seconds`): nlu may not import this
module, and the names stay as they are.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, col, select

from knowledge_base.models import Notification, OutboxStatus, Passage, Source, utcnow
from knowledge_base.settings import get_settings

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- processes

PROCESSES = Gauge(
    "kabashoax_processes",
    "Live processes reporting metrics, by role (web workers, notifier, scheduler)",
    ["role"],
    multiprocess_mode="livesum",
)

# --------------------------------------------------------------------------- message path (bot)
# Incremented by bot.metrics_hooks; labels are bounded sets, never ids or text.

MESSAGES_IN = Counter(
    "kabashoax_messages_received_total",
    "Citizen messages received, by channel and intent",
    ["channel", "intent"],
)
MESSAGES_OUT = Counter(
    "kabashoax_messages_sent_total",
    "Replies sent to citizens, by channel and intent answered",
    ["channel", "intent"],
)
HANDLING_SECONDS = Histogram(
    "kabashoax_message_handling_seconds",
    "Time from a message's arrival to its replies being stored, by channel",
    ["channel"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
NLU_BREAKER_OPEN = Gauge(
    "kabashoax_nlu_breaker_open",
    "1 while the Rasa circuit breaker is open (intents come from the fallback classifier)",
    multiprocess_mode="livemax",
)
MATCH_DECISIONS = Counter(
    "kabashoax_match_decisions_total", "Claim-matching decisions (auto, suggest, none)", ["decision"]
)
ANSWERS = Counter("kabashoax_answers_total", "Questions answered from the knowledge base", ["found"])
DELIVERY_FAILURES = Counter(
    "kabashoax_delivery_failures_total",
    "Failed deliveries of replies and notifications, by channel and cause (e.g. rate_limited, "
    "server_error, blocked, bad_request, network)",
    ["channel", "cause"],
)

# --------------------------------------------------------------------------- background work

FEED_POLLS = Counter(
    "kabashoax_feed_polls_total",
    "Feed polls by source and outcome (ok, not_modified, warning, error)",
    ["source", "outcome"],
)
JOB_RUNS = Counter(
    "kabashoax_scheduler_job_runs_total",
    "Scheduler job runs by job and outcome (ok, error)",
    ["job", "outcome"],
)
JOB_SECONDS = Histogram(
    "kabashoax_scheduler_job_seconds",
    "Duration of scheduler job runs",
    ["job"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)


# --------------------------------------------------------------------------- read from the database


def saved_index_size(name: str) -> int | None:
    """Vectors in the index as last saved by any process (its manifest), None when never saved."""
    try:
        manifest = json.loads((get_settings().index_dir / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    count = manifest.get("count")
    return int(count) if isinstance(count, int) else None


def database_metrics(session: Session) -> list[GaugeMetricFamily]:
    """Gauges computed from the database now: outbox depth and age, sources failing, passages, index."""
    now = utcnow()
    hours = get_settings().source_failing_warn_hours

    outbox = GaugeMetricFamily("kabashoax_outbox_notifications", "Outbox rows by status", labels=["status"])
    counts = dict(session.exec(select(Notification.status, func.count()).group_by(Notification.status)).all())
    for status in OutboxStatus:
        outbox.add_metric([status.value], float(counts.get(status.value, 0)))
    oldest = session.exec(
        select(func.min(Notification.created_at)).where(Notification.status == OutboxStatus.pending)
    ).one()
    age = GaugeMetricFamily(
        "kabashoax_outbox_oldest_pending_age_seconds", "Age of the oldest notification not yet delivered"
    )
    age.add_metric([], _age_seconds(oldest, now))

    enabled = (Source.enabled, col(Source.feed_url).is_not(None))
    sources = GaugeMetricFamily(
        "kabashoax_sources",
        "Polled sources: enabled, failing now, failing for the warning period",
        labels=["state"],
    )
    sources.add_metric(["enabled"], _count(session, select(func.count()).select_from(Source).where(*enabled)))
    sources.add_metric(
        ["failing"],
        _count(
            session, select(func.count()).select_from(Source).where(*enabled, col(Source.error_count) > 0)
        ),
    )
    sources.add_metric(
        ["failing_long"],
        _count(
            session,
            select(func.count())
            .select_from(Source)
            .where(*enabled, col(Source.failing_since) <= now - timedelta(hours=hours)),
        ),
    )

    passages = GaugeMetricFamily("kabashoax_passages", "Passages stored in the database")
    passages.add_metric([], _count(session, select(func.count()).select_from(Passage)))
    index = GaugeMetricFamily(
        "kabashoax_index_vectors", "Vectors in the saved search index (as last saved)", labels=["index"]
    )
    size = saved_index_size("passages")
    if size is not None:
        index.add_metric(["passages"], float(size))
    return [outbox, age, sources, passages, index]


def _count(session: Session, query: Any) -> float:
    return float(session.exec(query).one() or 0)


def _age_seconds(when: datetime | None, now: datetime) -> float:
    if when is None:
        return 0.0
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max((now - aware).total_seconds(), 0.0)


class DatabaseCollector(Collector):
    """`database_metrics` as a collector for one scrape (it holds the scrape's session)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from database_metrics(self.session)


# --------------------------------------------------------------------------- serving


def scrape_allowed(client_host: str, authorization: str) -> bool:
    """Who may read metrics: the `METRICS_TOKEN` bearer when it is set, else loopback clients only."""
    token = get_settings().metrics_token
    if token:
        return secrets.compare_digest(authorization.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False


def process_registry() -> CollectorRegistry:
    """This process's metrics, or with `PROMETHEUS_MULTIPROC_DIR` those of every process sharing it."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def report_process(role: str, *, metrics_port: bool = True) -> None:
    """Count this process in `kabashoax_processes{role}` while it lives, and serve its metrics on
    `METRICS_PORT` when no web app adds them up (no `PROMETHEUS_MULTIPROC_DIR`: its own container).

    `livesum`: a dead process's value is dropped when its parent calls `mark_process_dead`."""
    PROCESSES.labels(role).set(1)
    if metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        serve_metrics_port()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line each
        return


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _guarded(app: WsgiApp) -> WsgiApp:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not scrape_allowed(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_AUTHORIZATION", "")):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"metrics are for loopback or the METRICS_TOKEN bearer\n"]
        return app(environ, start_response)

    return guarded


def serve_metrics_port(port: int | None = None, host: str = "0.0.0.0") -> int | None:
    """Serve this process's metrics on `METRICS_PORT` (a thread), for processes whose values no web app
    shares: the notifier and scheduler containers. Same access rule as `/metrics`. Returns the port."""
    port = port if port is not None else get_settings().metrics_port
    if not port:
        return None
    try:
        server = make_server(
            host,
            port,
            _guarded(make_wsgi_app(process_registry())),
            _ThreadingServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:  # e.g. several processes of one host given the same port
        log.error("metrics port %d not served: %s", port, exc)
        return None
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()
    log.info("metrics served on port %d", server.server_port)
    return int(server.server_port)
