"""The comms office's pages: "Buat kabar" composer, previews as subscribers see them, publishing, counts.

Only `comms` officers and admins. Every change is a POST with the CSRF token, redirects back
(POST-redirect-GET) and is audited by `knowledge_base.digests`; htmx only makes the verdict search live.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.responses import HTMLResponse, Response

from fact_team_console import public_render  # noqa: F401  (registers the filters the previews use)
from fact_team_console.claimreview import rating_info
from fact_team_console.security import RowId, csrf_protect, require_roles
from fact_team_console.templating import flash, render
from fact_team_console.ticket_detail import usernames
from knowledge_base import digest_render, digests
from knowledge_base.dates import WITA
from knowledge_base.db import get_session
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.digests import DigestError
from knowledge_base.models import Digest, DigestStatus, Role, StaffUser, utcnow

router = APIRouter(include_in_schema=False)
Comms = Annotated[StaffUser, Depends(require_roles(Role.comms))]
DbSession = Annotated[Session, Depends(get_session)]
MAX_FIELD = 2000


def _back(digest_id: int, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/digests/{digest_id}{anchor}", status_code=303)


def _step(
    request: Request, session: Session, digest_id: int, ok: str, step: Callable[[], object]
) -> Response:
    """Run one edit, commit it, and come back to the composer with a message either way."""
    try:
        step()
    except DigestError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return _back(digest_id)
    session.commit()
    flash(request, ok)
    return _back(digest_id)


def _local_day(value: str, fallback: date) -> date:
    try:
        return date.fromisoformat(value) if value else fallback
    except ValueError:
        raise DigestError("Tanggal harus berformat YYYY-MM-DD.") from None


# --------------------------------------------------------------------------- list and create


@router.get("/digests")
def digest_list(request: Request, user: Comms, session: DbSession) -> HTMLResponse:
    rows = digests.list_digests(session=session)
    ids = [d.id or 0 for d in rows]
    today = utcnow().astimezone(WITA).date()
    period_days = get_digest_settings().period_days
    context = {
        "user": user,
        "rows": [(d, digest_render.period_label(d.period_start, d.period_end)) for d in rows],
        "items": digests.item_counts(ids, session=session),
        "deliveries": digests.delivery_counts(ids, session=session),
        "subscribers": digests.subscriber_counts(session=session),
        "default_from": (today - timedelta(days=period_days - 1)).isoformat(),
        "default_to": today.isoformat(),
        "names": usernames(session),
        "channel": get_digest_settings().telegram_channel_id,
    }
    return render(request, "digests.html", context)


@router.post("/digests", dependencies=[Depends(csrf_protect)])
def digest_create(
    request: Request,
    user: Comms,
    session: DbSession,
    start: str = Form("", max_length=20),
    end: str = Form("", max_length=20),
) -> Response:
    today = utcnow().astimezone(WITA).date()
    try:
        first = _local_day(start, today - timedelta(days=get_digest_settings().period_days - 1))
        last = _local_day(end, today)
        begin = datetime.combine(first, time(), tzinfo=WITA)
        finish = datetime.combine(last + timedelta(days=1), time(), tzinfo=WITA)
        digest = digests.create_draft(begin, finish, session=session, actor_id=user.id)
    except DigestError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return RedirectResponse("/digests", status_code=303)
    session.commit()
    flash(
        request, "Draf kabar dibuat dari vonis yang terbit pada periode itu, yang paling banyak ditanya dulu."
    )
    return _back(digest.id or 0)


@router.get("/digests/notice")
def digest_notice(request: Request, user: Comms, session: DbSession) -> HTMLResponse:
    """The console home's reminder (loaded by htmx): drafts waiting, the automatic weekly one first."""
    drafts = digests.pending_drafts(session=session)
    first = drafts[0] if drafts else None
    context = {
        "drafts": drafts,
        "first": first,
        "first_period": digest_render.period_label(first.period_start, first.period_end) if first else "",
        "first_count": digests.item_counts([first.id or 0], session=session).get(first.id or 0, 0)
        if first
        else 0,
    }
    return render(request, "_digest_notice.html", context)


# --------------------------------------------------------------------------- the composer


def _load(session: Session, digest_id: int) -> Digest:
    digest = session.get(Digest, digest_id)
    if digest is None or digest.status == DigestStatus.discarded:
        raise DigestError("Kabar tidak ditemukan.")
    return digest


def _search(session: Session, digest: Digest, q: str) -> list[dict[str, Any]]:
    if not q.strip():
        return []
    in_digest = [e.verdict_id for e in digests.view(digest, session=session).entries]
    rows, _ = digests.find_verdicts(q, session=session, exclude=in_digest, limit=10)
    return [{"v": v, "tone": rating_info(v.rating).tone} for v in rows]


def composer_context(session: Session, digest: Digest, user: StaffUser, q: str = "") -> dict[str, Any]:
    view = digests.view(digest, session=session)
    settings = get_digest_settings()
    return {
        "user": user,
        "digest": digest,
        "d": view,
        "site": settings,
        "telegram": digest_render.telegram(view),
        "channel_post": digest_render.telegram(view, channel=True) if settings.telegram_channel_id else None,
        "wa_text": digest_render.whatsapp(view, inside_window=True),
        "wa_template": digest_render.whatsapp(view, inside_window=False),
        "subscribers": digests.subscriber_counts(session=session),
        "deliveries": digests.delivery_counts([digest.id or 0], session=session)[digest.id or 0],
        "names": usernames(session),
        "q": q,
        "results": _search(session, digest, q),
    }


@router.get("/digests/{digest_id}")
def digest_page(
    request: Request,
    digest_id: RowId,
    user: Comms,
    session: DbSession,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    try:
        digest = _load(session, digest_id)
    except DigestError as exc:
        flash(request, str(exc), "error")
        return RedirectResponse("/digests", status_code=303)
    return render(request, "digest.html", composer_context(session, digest, user, q))


@router.get("/digests/{digest_id}/search")
def digest_search(
    request: Request,
    digest_id: RowId,
    user: Comms,
    session: DbSession,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    digest = session.get(Digest, digest_id)
    results = _search(session, digest, q) if digest is not None else []
    return render(request, "_digest_search.html", {"digest": digest, "results": results, "q": q})


@router.post("/digests/{digest_id}/texts", dependencies=[Depends(csrf_protect)])
def digest_texts(
    request: Request,
    digest_id: RowId,
    user: Comms,
    session: DbSession,
    intro: str = Form("", max_length=MAX_FIELD),
    outro: str = Form("", max_length=MAX_FIELD),
    correction_note: str | None = Form(None, max_length=MAX_FIELD),
) -> Response:
    return _step(
        request,
        session,
        digest_id,
        "Pembuka dan penutup disimpan.",
        lambda: digests.set_texts(
            digest_id,
            intro=intro,
            outro=outro,
            correction_note=correction_note,
            session=session,
            actor_id=user.id,
        ),
    )


@router.post("/digests/{digest_id}/items", dependencies=[Depends(csrf_protect)])
def digest_add(
    request: Request,
    digest_id: RowId,
    user: Comms,
    session: DbSession,
    verdict_id: int = Form(..., ge=1, le=2_147_483_647),
) -> Response:
    return _step(
        request,
        session,
        digest_id,
        "Vonis ditambahkan.",
        lambda: digests.add_item(digest_id, verdict_id, session=session, actor_id=user.id),
    )


@router.post("/digests/{digest_id}/items/{verdict_id}/move", dependencies=[Depends(csrf_protect)])
def digest_move(
    request: Request,
    digest_id: RowId,
    verdict_id: RowId,
    user: Comms,
    session: DbSession,
    direction: str = Form("up", pattern="^(up|down)$"),
) -> Response:
    offset = -1 if direction == "up" else 1
    return _step(
        request,
        session,
        digest_id,
        "Urutan disimpan.",
        lambda: digests.move_item(digest_id, verdict_id, offset, session=session, actor_id=user.id),
    )


@router.post("/digests/{digest_id}/items/{verdict_id}/drop", dependencies=[Depends(csrf_protect)])
def digest_drop(
    request: Request, digest_id: RowId, verdict_id: RowId, user: Comms, session: DbSession
) -> Response:
    return _step(
        request,
        session,
        digest_id,
        "Vonis dikeluarkan dari kabar.",
        lambda: digests.drop_item(digest_id, verdict_id, session=session, actor_id=user.id),
    )


@router.post("/digests/{digest_id}/items/{verdict_id}/line", dependencies=[Depends(csrf_protect)])
def digest_line(
    request: Request,
    digest_id: RowId,
    verdict_id: RowId,
    user: Comms,
    session: DbSession,
    line: str = Form("", max_length=MAX_FIELD),
) -> Response:
    return _step(
        request,
        session,
        digest_id,
        "Baris penjelasan disimpan.",
        lambda: digests.set_line(digest_id, verdict_id, line, session=session, actor_id=user.id),
    )


@router.post("/digests/{digest_id}/publish", dependencies=[Depends(csrf_protect)])
def digest_publish(
    request: Request,
    digest_id: RowId,
    user: Comms,
    session: DbSession,
    confirm: str = Form("", max_length=10),
) -> Response:
    if confirm != "yes":
        flash(request, "Centang konfirmasi dulu: kabar yang terbit tidak bisa diubah lagi.", "error")
        return _back(digest_id, "#publish")
    # End the read transaction the login check opened: on SQLite a write after a stale read fails as
    # "locked" when another process (the bot, a second officer) committed in between.
    session.commit()
    try:
        report = digests.publish(digest_id, session=session, actor_id=user.id)
    except DigestError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return _back(digest_id)
    session.commit()
    if report.already_published:
        flash(request, "Kabar ini sudah terbit sebelumnya; tidak ada yang dikirim ulang.", "error")
    else:
        channel = " dan kanal Telegram" if report.channel_post else ""
        flash(request, f"Kabar terbit: {report.total} pelanggan{channel} masuk antrean kirim.")
    return _back(digest_id)


@router.post("/digests/{digest_id}/discard", dependencies=[Depends(csrf_protect)])
def digest_discard(request: Request, digest_id: RowId, user: Comms, session: DbSession) -> Response:
    try:
        digests.discard(digest_id, session=session, actor_id=user.id)
    except DigestError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return _back(digest_id)
    session.commit()
    flash(request, "Draf disingkirkan.")
    return RedirectResponse("/digests", status_code=303)


@router.post("/digests/{digest_id}/correct", dependencies=[Depends(csrf_protect)])
def digest_correct(request: Request, digest_id: RowId, user: Comms, session: DbSession) -> Response:
    try:
        draft = digests.start_correction(digest_id, session=session, actor_id=user.id)
    except DigestError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return _back(digest_id)
    session.commit()
    flash(request, "Draf koreksi dibuat: perbaiki isinya dan tulis apa yang dikoreksi.")
    return _back(draft.id or 0)
