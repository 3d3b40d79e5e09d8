"""Console fixtures: the real app on the shared rolled-back `session`, staff of every role, seeded tickets."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from fact_team_console.passwords import hash_password
from fact_team_console.security import reset_login_limits
from fact_team_console.web import create_app
from knowledge_base.db import get_session
from knowledge_base.models import Citizen, CitizenReport, Claim, StaffUser

PASSWORD = "Kupang-fakta-2026"
ROLES = {
    "cek1": "checker",
    "cek2": "checker",
    "tinjau1": "reviewer",
    "tinjau2": "reviewer",
    "humas": "comms",
    "admin": "admin",
}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def password_hash() -> str:
    """Argon2 is slow on purpose: hash the shared test password once per run."""
    return hash_password(PASSWORD)


@pytest.fixture(autouse=True)
def _fresh_login_limits() -> Iterator[None]:
    reset_login_limits()
    yield
    reset_login_limits()


@pytest.fixture
def staff(session: Session, password_hash: str) -> dict[str, StaffUser]:
    users = {
        name: StaffUser(username=name, role=role, password_hash=password_hash) for name, role in ROLES.items()
    }
    session.add_all(users.values())
    session.commit()
    return users


@pytest.fixture
def app(session: Session) -> FastAPI:
    app = create_app()
    app.dependency_overrides[get_session] = lambda: session
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def csrf_of(client: TestClient, path: str = "/login") -> str:
    match = CSRF_RE.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form like a browser; returns the session's CSRF token."""
    token = csrf_of(client)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return csrf_of(client, "/")


def real_claims(shared_data: Path, n: int) -> list[dict[str, str]]:
    """Real circulated messages from turnbackhoax.id (Mafindo), the kind citizens forward."""
    with (shared_data / "factchecks" / "turnbackhoax_dev.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if len(r["message"].split()) >= 12]
    return rows[:n]


def add_citizen(session: Session, n: int, channel: str = "telegram") -> Citizen:
    citizen = Citizen(
        channel=channel, pseudonym=f"{n:04d}ab12cd34ef56ab12cd34ef56ab12", address=f"+6281234{n:05d}"
    )
    session.add(citizen)
    session.flush()
    return citizen


def ask(session: Session, text: str, citizen: Citizen) -> Claim:
    """A citizen asks about a claim the way the bot files it (knowledge_base.tickets.report_claim)."""
    from knowledge_base.tickets import report_claim

    claim = report_claim(text, session=session, citizen_id=citizen.id, message_id=None)
    session.commit()
    return claim


def make_claim(session: Session, text: str, asks: int = 1, status: str = "new", **fields: object) -> Claim:
    """A ticket with `asks` citizen reports, inserted directly (for tests not about how tickets form)."""
    import hashlib

    claim = Claim(
        text=text,
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        status=status,
        ask_count=asks,
        **fields,
    )
    session.add(claim)
    session.flush()
    for i in range(asks):
        citizen = add_citizen(session, 1000 * (claim.id or 0) + i)
        session.add(CitizenReport(claim_id=claim.id or 0, citizen_id=citizen.id, text=text))
    session.commit()
    return claim
