"""Prometheus metrics of the whole service, defined in one place (bot and console may import them).

Counters and histograms are incremented where things happen. With `PROMETHEUS_MULTIPROC_DIR` set
(`kabashoax run` sets it for itself and its scheduler child), every process writes its values to files
there and `/metrics` adds them up, so the web app shows what the scheduler did. State that lives in
the database (outbox, sources, index size) is read at scrape time by `DatabaseCollector` instead, so it
is right whichever process changed it.

NLU metrics are nlu's own (`nlu/client.py`: `kabashoax_nlu_parsed_total{source}`,
`kabashoax_nlu_rasa_errors_total{reason}`, `kabashoax_nlu_parse_seconds`): nlu may not import this
module, and the names stay as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, col, select

from knowledge_base.models import Notification, OutboxStatus, Passage, Source, utcnow
from knowledge_base.settings import get_settings

# --------------------------------------------------------------------------- message path (bot)
# Defined here for the bot to increment (next phase); labels are bounded sets, never ids or text.

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
