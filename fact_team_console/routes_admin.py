"""Dashboard and trusted-source status for everyone on the team; audit log and staff accounts for admins."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import HTMLResponse, Response

from fact_team_console import audit, dashboard, ticket_detail, users
from fact_team_console.forms import Post
from fact_team_console.passwords import WeakPasswordError
from fact_team_console.security import (
    MAX_ID,
    Admin,
    CurrentUser,
    DbSession,
    PasswordField,
    RowId,
    UsernameField,
    csrf_protect,
)
from fact_team_console.templating import SECURITY_HEADERS, render, templates
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
    user: Admin,
    post: Post,
    username: UsernameField = "",
    role: str = Form("", max_length=20),
    password: PasswordField = "",
) -> Response:
    def failed(message: str) -> Response:  # the form again, with what was typed (never the password)
        context = {
            "user": user,
            "users": users.list_users(post.session),
            "error": message,
            "new_username": username,
            "new_role": role,
        }
        return render(post.request, "users.html", context, status_code=422)

    return post.run(
        partial(users.create_user, username, role, password, session=post.session, by_user_id=user.id),
        ok=lambda created: f"Akun {created.username} ({created.role}) dibuat.",
        back="/users",
        failed=failed,
        refusals=(users.UserError, WeakPasswordError),
    )


@router.post("/users/{user_id}/active", dependencies=[Depends(csrf_protect)])
def toggle_user(user_id: RowId, user: Admin, post: Post, active: bool = Form(...)) -> Response:
    return post.run(
        partial(users.set_active, user_id, active, session=post.session, by_user_id=user.id),
        ok="Akun diaktifkan." if active else "Akun dinonaktifkan.",
        back="/users",
        refusals=(users.UserError,),
    )
