"""`kabashoax scheduler`: the background process (feed polling, embedding, periodic jobs).

It runs apart from the web app so embedding never competes with message handling inside one process,
and it is made polite before any model loads: `embeddings.configure_threads(background=True)` gives it
`EMBEDDING_BACKGROUND_THREADS` threads at nice 19 (the 2-core budget in MEASURED.md). Any number of
schedulers may run (database leases: each job runs once per interval); `kabashoax run` starts one.
"""

from __future__ import annotations

import logging
import signal
import threading

from kabashoax.children import watch_parent

log = logging.getLogger("kabashoax.scheduler")


def main(*, once: bool = False, only: list[str] | None = None, feeds: bool = True, sync: bool = True) -> int:
    """Run the scheduler until SIGTERM/SIGINT (or, with `once`, the jobs due now); the exit status."""
    from knowledge_base import embeddings, logs

    embeddings.configure_threads(background=True)

    logs.configure("scheduler")
    from knowledge_base.db import ensure_schema, session_scope
    from knowledge_base.jobs import default_jobs
    from knowledge_base.scheduler import Scheduler
    from knowledge_base.sources import SourceError, load_specs, sync_sources

    ensure_schema()
    if sync:
        try:
            with session_scope() as session:
                report = sync_sources(load_specs(), session=session)
            log.info("sources file: %d added, %d updated", len(report.added), len(report.updated))
        except SourceError as exc:  # a broken sources.yaml must not stop the polling of known sources
            log.error("sources file not loaded: %s", exc)
    jobs = default_jobs(feeds=feeds)
    if only:
        unknown = sorted(set(only) - {j.name for j in jobs})
        if unknown:
            log.error("unknown jobs: %s (known: %s)", ", ".join(unknown), ", ".join(j.name for j in jobs))
            return 2
        jobs = [j for j in jobs if j.name in only]
    scheduler = Scheduler(jobs)
    if once:
        scheduler.register()
        ran = scheduler.run_due()
        log.info("ran %d due jobs: %s", len(ran), ", ".join(ran) or "none")
        return 0
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: scheduler.stop_event.set())
    watch_parent(scheduler.stop_event)
    from knowledge_base.metrics import report_process

    report_process("scheduler")
    scheduler.run_forever()
    return 0
