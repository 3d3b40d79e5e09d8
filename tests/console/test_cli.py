"""`kabashoax users add|list`: accounts from the command line, weak passwords refused."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select
from typer.testing import CliRunner

from fact_team_console.passwords import verify_password
from kabashoax.cli import app
from knowledge_base.db import session_scope
from knowledge_base.models import StaffUser

runner = CliRunner()


def test_users_add_stores_an_argon2_hash_and_list_shows_it(app_env: Path) -> None:
    result = runner.invoke(
        app, ["users", "add", "Maria.Lay", "--role", "reviewer", "--password", "Sasando-Rote-77"]
    )
    assert result.exit_code == 0, result.output
    with session_scope() as s:
        user = s.exec(select(StaffUser).where(StaffUser.username == "maria.lay")).one()
        assert user.role == "reviewer"
        assert user.password_hash.startswith("$argon2")
        assert verify_password("Sasando-Rote-77", user.password_hash)
    listed = runner.invoke(app, ["users", "list"])
    assert "maria.lay" in listed.output and "reviewer" in listed.output and "argon2" not in listed.output


def test_users_add_prompts_with_confirmation(app_env: Path) -> None:
    result = runner.invoke(
        app, ["users", "add", "yohanes", "--role", "checker"], input="Tenun-Ikat-2026\nTenun-Ikat-2026\n"
    )
    assert result.exit_code == 0, result.output
    with session_scope() as s:
        assert s.exec(select(StaffUser).where(StaffUser.username == "yohanes")).one().role == "checker"


def test_weak_password_duplicate_and_bad_role_are_refused(app_env: Path) -> None:
    weak = runner.invoke(app, ["users", "add", "ana", "--role", "checker", "--password", "12345"])
    assert weak.exit_code == 1 and "at least" in weak.output
    contains_name = runner.invoke(
        app, ["users", "add", "ana", "--role", "checker", "--password", "ana-kupang-2026"]
    )
    assert contains_name.exit_code == 1 and "username" in contains_name.output
    bad_role = runner.invoke(app, ["users", "add", "ana", "--role", "boss", "--password", "Sasando-Rote-77"])
    assert bad_role.exit_code != 0
    ok = runner.invoke(app, ["users", "add", "ana", "--role", "checker", "--password", "Sasando-Rote-77"])
    assert ok.exit_code == 0
    again = runner.invoke(app, ["users", "add", "ana", "--role", "admin", "--password", "Sasando-Rote-77"])
    assert again.exit_code == 1 and "exists" in again.output
    with session_scope() as s:
        assert [u.role for u in s.exec(select(StaffUser))] == ["checker"]
