"""Staff accounts: creation with a strength check, and authentication with per-username lockout."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from fact_team_console import audit
from fact_team_console.inputs import clean
from fact_team_console.passwords import check_strength, dummy_verify, hash_password, verify_password
from fact_team_console.settings import get_console_settings
from knowledge_base.models import Role, StaffUser, utcnow

log = logging.getLogger(__name__)
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")


class UserError(ValueError):
    """A staff account cannot be created or changed as asked; the message says why."""


def create_user(
    username: str, role: str, password: str, *, session: Session, by_user_id: int | None = None
) -> StaffUser:
    """Add an account; refuses bad names, unknown roles, weak passwords and duplicates."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise UserError("username: 2-40 characters a-z, 0-9, '.', '_' or '-'")
    if role not in {r.value for r in Role}:
        raise UserError(f"role must be one of: {', '.join(r.value for r in Role)}")
    check_strength(password, username)
    if session.exec(select(StaffUser).where(StaffUser.username == username)).first():
        raise UserError(f"user {username!r} already exists")
    user = StaffUser(username=username, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit.record(session, by_user_id, "user.create", "staffuser", user.id, username=username, role=role)
    return user


def list_users(session: Session) -> list[StaffUser]:
    return list(session.exec(select(StaffUser).order_by(col(StaffUser.username))))


def set_active(user_id: int, active: bool, *, session: Session, by_user_id: int | None) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise UserError("no such user")
    if user.id == by_user_id and not active:
        raise UserError("you cannot deactivate your own account")
    user.active = active
    session.add(user)
    audit.record(session, by_user_id, "user.activate" if active else "user.deactivate", "staffuser", user_id)
    return user


def authenticate(
    username: str, password: str, *, session: Session, now: datetime | None = None
) -> StaffUser | None:
    """The user when the password is right and the account active and not locked; counts failures.

    After `max_failed_logins` failures in a row the account is locked for `lockout_minutes`, even for
    the right password, so guessing is throttled per username whatever address it comes from.
    """
    settings = get_console_settings()
    now = now or utcnow()
    user = session.exec(
        select(StaffUser).where(StaffUser.username == clean(username).strip().lower())
    ).first()
    if user is None:
        dummy_verify()
        return None
    if user.locked_until is not None and user.locked_until > now:
        dummy_verify()
        log.info("login refused: account locked user_id=%s", user.id)
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        user.failed_logins += 1
        if user.failed_logins >= settings.max_failed_logins:
            user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            user.failed_logins = 0
            audit.record(session, None, "user.locked", "staffuser", user.id)
            log.warning("account locked after failed logins user_id=%s", user.id)
        session.add(user)
        return None
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    audit.record(session, user.id, "user.login", "staffuser", user.id)
    return user
