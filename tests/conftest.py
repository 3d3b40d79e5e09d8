"""Shared fixtures: real SQLite and PostgreSQL databases, each test isolated by a rolled-back transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from knowledge_base.db import engine_for, migrate
from knowledge_base.settings import get_settings
from tests.helpers.db import POSTGRES_URL, SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.exists(), f"real test data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private schema in the `test` database, so parallel runs never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem, say it loudly
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Both backends; tests using `session` or `engine` run once on each."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def engine(db_url: str) -> Engine:
    migrate(db_url)
    return engine_for(db_url)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work (commits included) is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
            yield s
        outer.rollback()


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings for code that opens its own sessions: a fresh data dir with a migrated SQLite file."""
    monkeypatch.setenv("KABASHOAX_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    migrate()
    yield tmp_path / "var"
    get_settings.cache_clear()
