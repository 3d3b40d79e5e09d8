"""The scheduler as operators run it, in real processes: `kabashoax run` polling a changing feed served
over HTTP, a failing source backing off, `/metrics` and `/ready` from the running app, and two
`kabashoax scheduler` processes sharing the work without ever running a job twice at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, create_engine, select

from knowledge_base.db import engine_for, migrate
from knowledge_base.models import Article, Digest, Passage, Source
from tests.test_feeds import FeedServer, item, respond, rss

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process ended while waiting for {what}: {log.read_text()[-3000:] if log else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f": {log.read_text()[-3000:]}" if log else ""))
        time.sleep(0.2)


def data_dir_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A fresh data dir, SQLite, an empty sources.yaml (only the sources a test adds are polled)."""
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources: []\n")
    env = {
        **os.environ,
        "KABASHOAX_DATA_DIR": str(tmp_path / "var"),
        "KABASHOAX_SOURCES_FILE": str(sources),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "LOG_FORMAT": "json",
        "SCHEDULER_CHECK_S": "0.3",
        "SCHEDULER_FEED_TICK_S": "1",
        **extra,
    }
    env.pop("DATABASE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def add_sources(db: str, sources: list[Source]) -> None:
    """Written straight into the table: a 1-minute interval (the CLI's minimum is 5) keeps the test short."""
    migrate(db)
    with Session(create_engine(db)) as s:
        s.add_all(sources)
        s.commit()


def source_row(db: str, name: str) -> Source:
    with Session(create_engine(db)) as s:
        return s.exec(select(Source).where(Source.name == name)).one()


def embedded_article(db: str, url: str) -> bool:
    with Session(create_engine(db)) as s:
        article = s.exec(select(Article).where(Article.url == url)).first()
        if article is None:
            return False
        vectors = s.exec(select(Passage.embedding).where(Passage.article_id == article.id)).all()
        return bool(vectors) and all(v is not None for v in vectors)


def log_events(log: Path) -> list[dict[str, object]]:
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def test_run_polls_a_changing_feed_and_backs_off_a_failing_one(tmp_path: Path, server: FeedServer) -> None:
    first = item(
        "1",
        "https://kota.example.id/air",
        "PDAM Kupang: air mengalir normal di Oebobo",
        "Pasokan air bersih di Kelurahan Oebobo kembali normal sejak pagi.",
    )
    second = item(
        "2",
        "https://kota.example.id/sampah",
        "Jadwal angkut sampah Kelapa Lima berubah",
        "Truk sampah Dinas Lingkungan Hidup kini mengangkut sampah Kelapa Lima setiap Selasa "
        "dan Jumat pukul enam pagi.",
    )
    server.routes["/kota.xml"] = respond(200, rss(first), {"Content-Type": "application/rss+xml"})
    server.routes["/rusak.xml"] = respond(500, b"Internal Server Error")
    env = data_dir_env(tmp_path)
    db = f"sqlite:///{(tmp_path / 'var' / 'kabashoax.sqlite3').resolve()}"
    add_sources(
        db,
        [
            Source(
                name="kota", outlet="Pemkot Kupang", feed_url=server.url("/kota.xml"), poll_interval_minutes=1
            ),
            Source(name="rusak", outlet="Rusak", feed_url=server.url("/rusak.xml"), poll_interval_minutes=1),
        ],
    )
    port = free_port()
    log = tmp_path / "run.log"
    cmd = [
        sys.executable,
        "-m",
        "kabashoax.cli",
        "run",
        "--port",
        str(port),
        "--no-rasa",
        "--no-ingest",
        "--no-notifier",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: embedded_article(db, "https://kota.example.id/air"), 240, "the first item", proc, log
        )
        failing = source_row(db, "rusak")
        assert failing.error_count == 1 and "HTTP 500" in (failing.last_error or "")
        assert failing.next_poll_at is not None and failing.last_polled_at is not None
        # One failure: twice the 1-minute interval, +-10 % jitter.
        delay = failing.next_poll_at - failing.last_polled_at
        assert timedelta(seconds=107) <= delay <= timedelta(seconds=133), delay

        server.routes["/kota.xml"] = respond(200, rss(first, second), {"Content-Type": "application/rss+xml"})
        wait_for(
            lambda: embedded_article(db, "https://kota.example.id/sampah"), 150, "the new item", proc, log
        )
        # No command was run: the scheduler polled again after the source's own interval...
        assert len(server.headers_of("/kota.xml")) == 2
        # ... while the failing source, backed off, was not tried again in that minute.
        assert len(server.headers_of("/rusak.xml")) == 1

        # The new item is searchable from another process (this one) at once: its vector is stored.
        hits = search_in(env, "kapan truk sampah angkut di Kelapa Lima?")
        assert hits and hits[0]["url"] == "https://kota.example.id/sampah"

        # The web app's /metrics adds up the scheduler process's counters.
        metrics = scrape(f"http://127.0.0.1:{port}/metrics")
        assert metrics[("kabashoax_feed_polls_total", (("outcome", "ok"), ("source", "kota")))] == 2
        assert metrics[("kabashoax_feed_polls_total", (("outcome", "error"), ("source", "rusak")))] == 1
        assert (
            metrics[("kabashoax_scheduler_job_runs_total", (("job", "feeds.poll"), ("outcome", "ok")))] >= 2
        )
        assert metrics[("kabashoax_sources", (("state", "failing"),))] == 1
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"  # no Rasa in this test
        assert ready.json()["checks"]["index"]["ok"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    started = [e for e in log_events(log) if str(e.get("event", "")).startswith("scheduler started (pid")]
    assert started, log.read_text()[-3000:]
    child = int(str(started[0]["event"]).split("pid ")[1].rstrip(")"))
    wait_for(lambda: not pid_alive(child), 30, "the scheduler to stop with kabashoax run")
    roles = {e.get("role") for e in log_events(log)}
    assert {"web", "scheduler"} <= roles  # both processes log JSON lines


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def search_in(env: dict[str, str], query: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "kabashoax.cli", "search", query, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return list(json.loads(out.stdout))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class InFlight:
    """Counts concurrent requests; each feed answers slowly, so overlapping polls would show."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(1.0)  # a slow feed server (6 s for all), not a wait of the test
            respond(200, rss(), {"Content-Type": "application/rss+xml"})(handler)
        finally:
            with self.lock:
                self.now -= 1


def test_two_schedulers_never_poll_at_the_same_time_and_poll_each_feed_once(
    tmp_path: Path, server: FeedServer
) -> None:
    flight = InFlight()
    names = [f"feed-{n}" for n in range(6)]
    for name in names:
        server.routes[f"/{name}.xml"] = flight.route
    env = data_dir_env(tmp_path)
    db = f"sqlite:///{(tmp_path / 'var' / 'kabashoax.sqlite3').resolve()}"
    add_sources(
        db,
        [Source(name=n, outlet=n, feed_url=server.url(f"/{n}.xml"), poll_interval_minutes=60) for n in names],
    )
    cmd = [sys.executable, "-m", "kabashoax.cli", "scheduler", "--job", "feeds.poll", "--no-sync"]
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    procs = []
    for path in logs:
        with path.open("wb") as out:
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        wait_for(lambda: all(source_row(db, n).last_ok_at for n in names), 120, "every feed polled")
        # Both schedulers keep claiming the job (due every second), in turn.
        wait_for(lambda: len(runners(logs)) == 2, 120, "both schedulers to run the job")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    assert flight.peak == 1, "two polls ran at once"
    assert sorted(p for p, _ in server.requests) == sorted(f"/{n}.xml" for n in names)  # each once
    assert all(p.returncode == 0 for p in procs)


def runners(logs: list[Path]) -> set[object]:
    """Process ids that logged a completed run of the feed job."""
    return {
        e.get("pid")
        for path in logs
        for e in log_events(path)
        if str(e.get("event", "")).startswith("job feeds.poll ok")
    }


def test_scheduler_once_runs_the_due_jobs_and_exits(tmp_path: Path) -> None:
    env = data_dir_env(tmp_path, SCHEDULER_FEED_TICK_S="60")
    cmd = [sys.executable, "-m", "kabashoax.cli", "scheduler", "--once"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    events = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
    ran = "ran 3 due jobs: feeds.poll, index.sync, digest.weekly-draft"
    assert any(e["event"] == ran for e in events), first.stderr
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert "ran 0 due jobs: none" in again.stderr  # not due again yet: the schedule is in the database
    db = f"sqlite:///{(tmp_path / 'var' / 'kabashoax.sqlite3').resolve()}"
    with Session(engine_for(db)) as s:  # the weekly digest draft, waiting for a comms officer
        drafts = s.exec(select(Digest).where(col(Digest.auto_key).is_not(None))).all()
    assert [d.status for d in drafts] == ["draft"]
    unknown = subprocess.run([*cmd, "--job", "nope"], env=env, capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 2 and "unknown jobs: nope" in unknown.stderr
