"""Periodic jobs, run by whichever scheduler process claims them (see `knowledge_base.leases`).

A job is a plain function `(now: datetime, *, session: Session) -> object` plus how often it runs;
the list of the service's jobs is `knowledge_base.jobs.default_jobs()` (adding one is one line). The
scheduler looks for due jobs every `SCHEDULER_CHECK_S`, claims one through its database lease, runs it
in a session that is committed when it returns (a job may commit on its way, too), renews the lease
while it runs and then schedules the next run `every` later, spread by +-`jitter`. A job that raises is
logged and counted, and runs again at its next time. Long jobs call `stopping()` between steps so a
shutdown (or a lost lease) ends them within a step.

Why not APScheduler's job stores: APScheduler 3 must not share a job store between processes, and the
schedule has to live in the database for several processes to run each job once.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

from knowledge_base import leases
from knowledge_base.db import session_scope
from knowledge_base.metrics import JOB_RUNS, JOB_SECONDS
from knowledge_base.models import utcnow
from knowledge_base.settings import get_settings

log = logging.getLogger(__name__)

JobFunc = Callable[..., object]  # (now: datetime, *, session: Session) -> object


@dataclass(frozen=True)
class Job:
    """A periodic job: `func(now, session=...)` every `every`, +-`jitter` of it."""

    name: str
    func: JobFunc
    every: timedelta
    jitter: float = 0.1


_current: ContextVar[Scheduler | None] = ContextVar("kabashoax_scheduler", default=None)


def stopping() -> bool:
    """For long jobs, between steps: True when the scheduler is shutting down or lost the job's lease."""
    scheduler = _current.get()
    return scheduler is not None and (scheduler.stop_event.is_set() or scheduler.lease_lost.is_set())


class Scheduler:
    """Runs its jobs in the calling thread, one at a time, until `stop_event` is set."""

    def __init__(self, jobs: Sequence[Job], *, holder: str | None = None) -> None:
        settings = get_settings()
        self.jobs = {job.name: job for job in jobs}
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.check_s = settings.scheduler_check_s
        self.lease = timedelta(seconds=settings.scheduler_lease_s)
        self.stop_event = threading.Event()
        self.lease_lost = threading.Event()

    @property
    def names(self) -> list[str]:
        return list(self.jobs)

    def run_forever(self) -> None:
        """Run due jobs until stopped; a database outage is logged and waited out, never fatal."""
        log.info("scheduler %s started with jobs: %s", self.holder, ", ".join(self.names))
        registered = False
        while not self.stop_event.is_set():
            try:
                if not registered:
                    self.register()
                    registered = True
                self.run_due()
                pause = self._pause()
            except Exception:
                log.exception("scheduler loop failed; retrying in %.0f s", self.check_s)
                pause = self.check_s
            self.stop_event.wait(pause)
        log.info("scheduler %s stopped", self.holder)

    def register(self) -> None:
        with session_scope() as session:
            leases.ensure_jobs(self.names, utcnow(), session=session)

    def run_due(self) -> list[str]:
        """Run every job that is due and not held by another process; returns those this process ran."""
        with session_scope() as session:
            due = leases.due_jobs(self.names, utcnow(), session=session)
        ran = []
        for name in due:
            if self.stop_event.is_set():
                break
            if self.run_job(self.jobs[name]):
                ran.append(name)
        return ran

    def _pause(self) -> float:
        with session_scope() as session:
            when = leases.next_due(self.names, session=session)
        if when is None:
            return self.check_s
        return min(max((when - utcnow()).total_seconds(), 0.05), self.check_s)

    def run_job(self, job: Job) -> bool:
        """Claim and run one job; False when another process holds it or it is not due."""
        started = utcnow()
        with session_scope() as session:
            if not leases.try_acquire(job.name, self.holder, self.lease, started, session=session):
                return False
        self.lease_lost.clear()
        done = threading.Event()
        heartbeat = threading.Thread(
            target=self._renew, args=(job.name, done), name=f"lease-{job.name}", daemon=True
        )
        heartbeat.start()
        token = _current.set(self)
        outcome, error = "ok", None
        clock = time.monotonic()
        try:
            with session_scope() as session:
                job.func(started, session=session)
        except Exception as exc:
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", job.name)
        finally:
            _current.reset(token)
            done.set()
            heartbeat.join()
        elapsed = time.monotonic() - clock
        JOB_RUNS.labels(job.name, outcome).inc()
        JOB_SECONDS.labels(job.name).observe(elapsed)
        finished = utcnow()
        interrupted = self.stop_event.is_set()
        next_run = (
            finished if interrupted else finished + job.every * (1 + random.uniform(-job.jitter, job.jitter))
        )
        with session_scope() as session:
            kept = leases.finish(
                job.name,
                self.holder,
                finished,
                next_run_at=next_run,
                outcome=outcome,
                error=error,
                session=session,
            )
        if not kept:
            log.error("job %s ran past its lease, which another process may have taken", job.name)
        log.info(
            "job %s %s in %.1f s%s",
            job.name,
            outcome,
            elapsed,
            " (interrupted by shutdown)" if interrupted else "",
        )
        return True

    def _renew(self, name: str, done: threading.Event) -> None:
        """Heartbeat: renew the lease every third of its length while the job runs."""
        while not done.wait(self.lease.total_seconds() / 3):
            try:
                with session_scope() as session:
                    if not leases.renew(name, self.holder, self.lease, utcnow(), session=session):
                        log.error("job %s lost its lease; stopping it", name)
                        self.lease_lost.set()
                        return
            except Exception:  # a failed renewal is retried; the lease still has two thirds left
                log.exception("renewing the lease of job %s failed", name)
