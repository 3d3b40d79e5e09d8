"""`/metrics` and `/ready` of the composed app, on SQLite and PostgreSQL (rolled-back `session`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from kabashoax.web import create_app
from knowledge_base.db import get_session
from knowledge_base.feeds import ingest_source
from knowledge_base.models import Article, Notification, Passage, Source, utcnow
from knowledge_base.settings import get_settings

TOKEN = "scrape-me-" + "x" * 20


@pytest.fixture
def app(session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    monkeypatch.setenv("KABASHOAX_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("RASA_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("RASA_TOKEN", "t")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    get_settings.cache_clear()
    from nlu.settings import get_settings as nlu_settings

    nlu_settings.cache_clear()
    app = create_app()
    app.dependency_overrides[get_session] = lambda: session
    yield app
    get_settings.cache_clear()
    nlu_settings.cache_clear()


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_need_the_token_or_a_loopback_client(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(app)
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    monkeypatch.delenv("METRICS_TOKEN")
    get_settings.cache_clear()
    assert TestClient(app, client=("203.0.113.9", 4000)).get("/metrics").status_code == 403
    assert TestClient(app, client=("127.0.0.1", 4000)).get("/metrics").status_code == 200
    assert TestClient(app, client=("::1", 4000)).get("/metrics").status_code == 200


def test_database_gauges_and_feed_counters_move(app: FastAPI, session: Session) -> None:
    client = TestClient(app)
    before = scrape(client)
    now = utcnow()
    session.add_all(
        [
            Notification(
                dedupe_key="m:1", channel="telegram", kind="verdict", created_at=now - timedelta(hours=2)
            ),
            Notification(dedupe_key="m:2", channel="telegram", kind="verdict"),
            Notification(dedupe_key="m:3", channel="telegram", kind="verdict", status="sent"),
        ]
    )
    dead = Source(name="mati", outlet="Mati", feed_url="http://127.0.0.1:9/rss")
    session.add(dead)
    session.commit()
    report = ingest_source(dead, session=session)  # a real failed poll: connection refused
    assert report.status == "error"
    dead.failing_since = now - timedelta(hours=30)  # ... and it has been failing for 30 hours
    session.add(dead)
    session.commit()

    after = scrape(client)
    assert after[("kabashoax_outbox_notifications", (("status", "pending"),))] == (
        before[("kabashoax_outbox_notifications", (("status", "pending"),))] + 2
    )
    assert after[("kabashoax_outbox_oldest_pending_age_seconds", ())] >= 2 * 3600 - 5
    assert after[("kabashoax_sources", (("state", "failing_long"),))] >= 1
    assert after[("kabashoax_sources", (("state", "failing"),))] >= 1
    polls = ("kabashoax_feed_polls_total", (("outcome", "error"), ("source", "mati")))
    assert after[polls] == before.get(polls, 0) + 1
    # The message-path metrics are exposed beside the database's (the bot counts them: test_bot_metrics).
    names = {name for name, _ in after}
    assert {"kabashoax_nlu_breaker_open", "kabashoax_passages"} <= names


def test_ready_is_degraded_without_rasa_and_down_without_an_index(
    app: FastAPI, session: Session, tmp_path: Path
) -> None:
    client = TestClient(app)
    response = client.get("/ready")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded", body
    assert body["checks"]["database"]["ok"] and not body["checks"]["rasa"]["ok"]

    source = Source(name="idx", outlet="Idx")
    session.add(source)
    session.flush()
    article = Article(
        source_id=source.id or 0, guid="g", url="https://idx.example.id/1", title="t", content_hash="h"
    )
    session.add(article)
    session.flush()
    session.add(Passage(article_id=article.id or 0, text="Air PDAM mengalir normal."))
    session.commit()
    down = client.get("/ready")
    assert down.status_code == 503 and down.json()["status"] == "down"
    assert "kabashoax index rebuild" in down.json()["checks"]["index"]["error"]

    index_dir = get_settings().index_dir
    index_dir.mkdir(parents=True)
    (index_dir / "passages.json").write_text(
        json.dumps({"model": get_settings().embedding_model, "count": 1})
    )
    again = client.get("/ready")
    assert again.status_code == 200 and again.json()["status"] == "degraded"
    (index_dir / "passages.json").write_text(json.dumps({"model": "another-model", "count": 1}))
    assert "--reembed" in client.get("/ready").json()["checks"]["index"]["error"]


def test_health_stays_trivial(app: FastAPI) -> None:
    assert TestClient(app).get("/health").json() == {"status": "ok"}


def test_metrics_port_serves_this_process_with_the_same_access_rule(app: FastAPI) -> None:
    """What the notifier and scheduler containers serve on METRICS_PORT (no web app adds them up)."""
    from knowledge_base.metrics import report_process, serve_metrics_port
    from tests.helpers.procs import free_port

    port = serve_metrics_port(free_port(), host="127.0.0.1")
    assert port is not None
    report_process("scheduler", metrics_port=False)
    url = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(url, timeout=10).status_code == 403  # METRICS_TOKEN is set: loopback is not enough
    response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("kabashoax_processes", (("role", "scheduler"),))] == 1
    assert serve_metrics_port(port, host="127.0.0.1") is None  # taken: logged, not fatal
