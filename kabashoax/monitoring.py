"""`/metrics` (Prometheus) and `/ready` (readiness) of the composed web app.

`/metrics` answers only loopback clients, or anyone presenting `Authorization: Bearer $METRICS_TOKEN`
when that is set (set it whenever the app is reached through a proxy or a container port). With
several workers (`PROMETHEUS_MULTIPROC_DIR`), whichever worker answers adds up every process's values.
`/ready` says whether this process can serve citizens: database reachable and migrated, search index
built for the configured model (else 503 "down"); Rasa out only makes it "degraded" (200), because the
fallback classifier answers meanwhile. `/health` (the console's) stays a trivial liveness check.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import func, text
from sqlmodel import Session, select
from starlette.responses import Response

from knowledge_base.db import current_revision, get_session, head_revision
from knowledge_base.leases import job_states
from knowledge_base.metrics import DatabaseCollector, scrape_allowed
from knowledge_base.models import Passage, utcnow
from knowledge_base.settings import get_settings

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
DbSession = Annotated[Session, Depends(get_session)]


def _allowed(request: Request) -> bool:
    return scrape_allowed(
        request.client.host if request.client else "", request.headers.get("authorization", "")
    )


@router.get("/metrics")
def metrics(request: Request, session: DbSession) -> Response:
    if not _allowed(request):
        raise HTTPException(status_code=403, detail="metrics are for loopback or the METRICS_TOKEN bearer")
    scrape = CollectorRegistry()
    scrape.register(DatabaseCollector(session))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scrape)  # every process's counters, added up
        body = generate_latest(scrape)
    else:
        body = generate_latest(REGISTRY) + generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# --------------------------------------------------------------------------- readiness


def _database(session: Session) -> dict[str, Any]:
    try:
        session.exec(select(text("1"))).one()
        current, head = current_revision(session.connection()), head_revision()
    except Exception as exc:  # any failure means "not ready"; details go to the log, not to the public
        log.warning("readiness: database check failed: %s", str(exc).splitlines()[0][:300])
        return {"ok": False, "error": type(exc).__name__}
    if current != head:
        return {"ok": False, "error": f"schema at {current}, code needs {head}: run `kabashoax db upgrade`"}
    return {"ok": True, "schema": current}


def _index(session: Session) -> dict[str, Any]:
    settings = get_settings()
    try:
        passages = int(session.exec(select(func.count()).select_from(Passage)).one() or 0)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if passages == 0:
        return {"ok": True, "vectors": 0, "passages": 0}
    try:
        manifest = json.loads((settings.index_dir / "passages.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {
            "ok": False,
            "passages": passages,
            "error": "no saved search index: run `kabashoax index rebuild`",
        }
    if manifest.get("model") != settings.embedding_model:
        return {
            "ok": False,
            "passages": passages,
            "error": f"index built with {manifest.get('model')}, configured {settings.embedding_model}: "
            "run `kabashoax index rebuild --reembed`",
        }
    return {"ok": True, "passages": passages, "vectors": manifest.get("count")}


def _rasa() -> dict[str, Any]:
    from nlu.rasa_service import is_up
    from nlu.settings import get_settings as nlu_settings

    settings = nlu_settings()
    up = is_up(settings.rasa_url, settings.token())
    return {"ok": up} if up else {"ok": False, "error": "Rasa not answering: the fallback classifier is used"}


def _jobs(session: Session) -> dict[str, Any]:
    """Informational: when each scheduler job last finished, and whether one is long overdue."""
    now = utcnow()
    try:
        states = job_states(session=session)
    except Exception:
        return {}
    return {
        job.name: {
            "last_finished_at": job.last_finished_at.isoformat() if job.last_finished_at else None,
            "last_outcome": job.last_outcome,
            "overdue": job.next_run_at < now - timedelta(hours=1),
        }
        for job in states
    }


@router.get("/ready")
def ready(session: DbSession) -> JSONResponse:
    checks = {"database": _database(session)}
    checks["index"] = _index(session) if checks["database"]["ok"] else {"ok": False, "error": "no database"}
    checks["rasa"] = _rasa()
    if not (checks["database"]["ok"] and checks["index"]["ok"]):
        status, code = "down", 503
    else:
        status, code = ("ready" if checks["rasa"]["ok"] else "degraded"), 200
    body = {"status": status, "checks": checks, "jobs": _jobs(session) if checks["database"]["ok"] else {}}
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})
