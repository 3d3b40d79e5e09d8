"""Dashboard and trusted-source status for everyone on the team; audit log and staff accounts for admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import HTMLResponse, Response

from fact_team_console import audit, dashboard, ticket_detail, users
from fact_team_console.passwords import WeakPasswordError
from fact_team_console.security import MAX_ID, Admin, CurrentUser, DbSession, RowId, csrf_protect
from fact_team_console.templating import SECURITY_HEADERS, flash, render, templates
from knowledge_base.settings import get_settings
from knowledge_base.sources import long_failing_sources, source_statuses

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    user: CurrentUser,
    session: DbSession,
) -> HTMLResponse:
    return render(request, "dashboard.html", {"user": user, "s": dashboard.compute(session)})


@router.get("/sources")
def sources_page(request: Request, user: CurrentUser, session: DbSession) -> HTMLResponse:
    """Per trusted source: last success, last error, items this week, next poll."""
    context = {
        "user": user,
        "rows": source_statuses(session=session),
        "warn_hours": get_settings().source_failing_warn_hours,
    }
    return render(request, "sources.html", context)


@router.get("/sources/warning")
def sources_warning(request: Request, user: CurrentUser, session: DbSession) -> HTMLResponse:
    """The banner every page loads (htmx): sources failing for the warning period; empty when none."""
    context = {
        "failing": long_failing_sources(session=session),
        "warn_hours": get_settings().source_failing_warn_hours,
    }
    # Not `render`: this fragment must not consume the page's one-time flash messages.
    response = templates.TemplateResponse(request, "_sources_warning.html", context)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/audit")
def audit_page(
    request: Request,
    user: Admin,
    session: DbSession,
    entity: str | None = Query(None, max_length=40),
    entity_id: int | None = Query(None, ge=1, le=MAX_ID),
) -> HTMLResponse:
    rows = audit.recent(session, entity=entity, entity_id=entity_id, limit=500)
    return render(
        request, "audit.html", {"user": user, "rows": rows, "names": ticket_detail.usernames(session)}
    )


@router.get("/users")
def users_page(
    request: Request,
    user: Admin,
    session: DbSession,
) -> HTMLResponse:
    return render(request, "users.html", {"user": user, "users": users.list_users(session)})


@router.post("/users", dependencies=[Depends(csrf_protect)])
def add_user(
    request: Request,
    user: Admin,
    session: DbSession,
    username: str = Form("", max_length=200),
    role: str = Form("", max_length=20),
    password: str = Form("", max_length=1000),
) -> Response:
    try:
        created = users.create_user(username, role, password, session=session, by_user_id=user.id)
    except (users.UserError, WeakPasswordError) as exc:
        session.rollback()
        context = {
            "user": user,
            "users": users.list_users(session),
            "error": str(exc),
            "new_username": username,
            "new_role": role,
        }
        return render(request, "users.html", context, status_code=422)
    session.commit()
    flash(request, f"Akun {created.username} ({created.role}) dibuat.")
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{user_id}/active", dependencies=[Depends(csrf_protect)])
def toggle_user(
    request: Request,
    user_id: RowId,
    user: Admin,
    session: DbSession,
    active: bool = Form(...),
) -> RedirectResponse:
    try:
        users.set_active(user_id, active, session=session, by_user_id=user.id)
    except users.UserError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return RedirectResponse("/users", status_code=303)
    session.commit()
    flash(request, "Akun diaktifkan." if active else "Akun dinonaktifkan.")
    return RedirectResponse("/users", status_code=303)
