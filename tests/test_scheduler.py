"""Job leases and the scheduler loop on SQLite and PostgreSQL, with real committed rows and threads."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from knowledge_base import leases
from knowledge_base.metrics import JOB_RUNS
from knowledge_base.models import ScheduledJob, utcnow
from knowledge_base.scheduler import Job, Scheduler, stopping
from knowledge_base.settings import get_settings

TTL = timedelta(seconds=30)


@pytest.fixture
def names(engine: Engine) -> Iterator[Callable[[], str]]:
    """Unique job names for this test; their rows are deleted afterwards (the rows are committed)."""
    made: list[str] = []

    def new() -> str:
        made.append(f"test.{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield new
    with engine.begin() as conn:
        conn.execute(sa.delete(ScheduledJob).where(ScheduledJob.name.in_(made)))  # type: ignore[attr-defined]


@pytest.fixture
def env(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`session_scope()` (used by the scheduler) on this test's database, with quick checks."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SCHEDULER_CHECK_S", "0.05")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def row(engine: Engine, name: str) -> ScheduledJob:
    with Session(engine) as s:
        return s.exec(select(ScheduledJob).where(ScheduledJob.name == name)).one()


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# --------------------------------------------------------------------------- leases


def test_only_one_holder_until_the_lease_expires(engine: Engine, names: Callable[[], str]) -> None:
    name, now = names(), utcnow()
    with Session(engine) as s:
        leases.ensure_jobs([name], now, session=s)
        assert leases.try_acquire(name, "a", TTL, now, session=s)
        assert not leases.try_acquire(name, "b", TTL, now + TTL / 2, session=s)
        assert leases.renew(name, "a", TTL, now + TTL / 2, session=s)
        assert not leases.try_acquire(name, "b", TTL, now + TTL, session=s)  # renewed: still a's
        # a dies; its lease runs out and b takes the job over.
        assert leases.try_acquire(name, "b", TTL, now + 2 * TTL, session=s)
        assert not leases.renew(name, "a", TTL, now + 2 * TTL, session=s)
        assert not leases.finish(name, "a", now, next_run_at=now, outcome="ok", error=None, session=s)
        later = now + timedelta(hours=1)
        assert leases.finish(name, "b", now + 2 * TTL, next_run_at=later, outcome="ok", error=None, session=s)
    job = row(engine, name)
    assert (job.holder, job.lease_until, job.runs, job.next_run_at) == (None, None, 1, later)
    with Session(engine) as s:  # not due before its next run
        assert not leases.try_acquire(name, "c", TTL, later - timedelta(seconds=1), session=s)
        assert leases.try_acquire(name, "c", TTL, later, session=s)


def test_concurrent_claims_have_exactly_one_winner(engine: Engine, names: Callable[[], str]) -> None:
    name, now = names(), utcnow()
    with Session(engine) as s:
        leases.ensure_jobs([name], now, session=s)
    start, wins = threading.Barrier(8), []

    def claim(holder: str) -> None:
        with Session(engine) as s:
            start.wait()
            if leases.try_acquire(name, holder, TTL, now, session=s):
                wins.append(holder)

    threads = [threading.Thread(target=claim, args=(f"h{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and row(engine, name).holder == wins[0]


def test_ensure_jobs_keeps_a_known_schedule(engine: Engine, names: Callable[[], str]) -> None:
    name, now = names(), utcnow()
    with Session(engine) as s:
        leases.ensure_jobs([name], now, session=s)
        assert leases.try_acquire(name, "a", TTL, now, session=s)
        leases.finish(
            name, "a", now, next_run_at=now + timedelta(days=1), outcome="ok", error=None, session=s
        )
        leases.ensure_jobs([name], now, session=s)  # a restarted scheduler registers its jobs again
    assert row(engine, name).next_run_at == now + timedelta(days=1)


# --------------------------------------------------------------------------- the scheduler loop


def test_a_due_job_runs_once_and_is_scheduled_again(
    env: None, engine: Engine, names: Callable[[], str]
) -> None:
    name, calls = names(), []

    def job(now: datetime, *, session: Session) -> None:
        calls.append(now)
        session.add(ScheduledJob(name=f"{name}.side-effect"))  # committed by the scheduler after the job

    scheduler = Scheduler([Job(name, job, every=timedelta(minutes=10), jitter=0.1)], holder="test")
    scheduler.register()
    assert scheduler.run_due() == [name]
    assert scheduler.run_due() == []  # not due again for ~10 minutes
    done = row(engine, name)
    assert len(calls) == 1 and done.runs == 1 and done.last_outcome == "ok"
    assert done.last_finished_at is not None
    assert timedelta(minutes=9) <= done.next_run_at - done.last_finished_at <= timedelta(minutes=11)
    assert row(engine, f"{name}.side-effect").runs == 0
    with engine.begin() as conn:
        conn.execute(sa.delete(ScheduledJob).where(ScheduledJob.name == f"{name}.side-effect"))


def test_a_failing_job_is_recorded_counted_and_not_retried_at_once(
    env: None, engine: Engine, names: Callable[[], str]
) -> None:
    name = names()

    def broken(now: datetime, *, session: Session) -> None:
        raise ValueError("feed registry unreadable")

    before = JOB_RUNS.labels(name, "error")._value.get()
    scheduler = Scheduler([Job(name, broken, every=timedelta(minutes=5))], holder="test")
    scheduler.register()
    assert scheduler.run_due() == [name]
    assert scheduler.run_due() == []
    failed = row(engine, name)
    assert failed.last_outcome == "error" and "ValueError: feed registry unreadable" in (
        failed.last_error or ""
    )
    assert failed.holder is None and failed.next_run_at > utcnow() + timedelta(minutes=4)
    assert JOB_RUNS.labels(name, "error")._value.get() == before + 1


def test_two_schedulers_never_run_a_job_at_the_same_time(
    env: None, engine: Engine, names: Callable[[], str]
) -> None:
    name, running, overlaps, runs = names(), [0], [], []
    lock = threading.Lock()

    def job(now: datetime, *, session: Session) -> None:
        with lock:
            running[0] += 1
            overlaps.append(running[0])
        time.sleep(0.05)  # the work itself, not a wait
        with lock:
            running[0] -= 1
            runs.append(now)

    schedulers = [
        Scheduler([Job(name, job, every=timedelta(seconds=0.01), jitter=0)], holder=f"s{i}") for i in range(2)
    ]
    threads = [threading.Thread(target=s.run_forever) for s in schedulers]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(runs) >= 10)
    finally:
        for s in schedulers:
            s.stop_event.set()
        for t in threads:
            t.join()
    assert max(overlaps) == 1


def test_the_lease_is_renewed_while_a_long_job_runs_and_shutdown_stops_it(
    env: None, engine: Engine, names: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_LEASE_S", "1")
    get_settings.cache_clear()
    name, started, steps = names(), threading.Event(), []

    def long_job(now: datetime, *, session: Session) -> None:
        started.set()
        while not stopping():
            steps.append(1)
            time.sleep(0.01)

    scheduler = Scheduler([Job(name, long_job, every=timedelta(hours=1))], holder="long")
    thread = threading.Thread(target=scheduler.run_forever)
    thread.start()
    try:
        assert started.wait(20)
        first = row(engine, name).lease_until
        assert first is not None
        wait_for(lambda: utcnow() > first + timedelta(seconds=0.3))  # past the lease first taken
        with Session(engine) as s:  # the heartbeat renewed it: still nobody else's
            assert not leases.try_acquire(name, "other", TTL, utcnow(), session=s)
        assert (row(engine, name).lease_until or first) > first
    finally:
        scheduler.stop_event.set()
        thread.join(20)
    assert not thread.is_alive() and steps
    stopped = row(engine, name)
    assert stopped.holder is None and stopped.next_run_at <= utcnow()  # due again for the next start
