"""Database engine (created once per URL), sessions, migrations and the schema check of every command.

A process's first `session_scope()` checks the schema once: an SQLite file behind the code is
migrated on the spot (a fresh data dir just works); a PostgreSQL database behind it raises
`SchemaNotReady`, whose message is the one line the operator needs (`kabashoax db upgrade`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

from knowledge_base.settings import PACKAGE_DIR, get_settings

MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


class SchemaNotReady(RuntimeError):
    """The database is not at the schema this code needs; the message says what to run."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the bot, the console and the notifier share one SQLite file without 'database is locked'.

    pysqlite's own transaction handling never emits BEGIN, which breaks SAVEPOINTs (and so rolled-back
    test transactions); SQLAlchemy's documented recipe: autocommit driver + explicit BEGIN on begin.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode; fewer fsyncs
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL for the life of the process."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def get_engine() -> Engine:
    return engine_for(get_settings().sqlalchemy_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for scripts and workers: commits on success, rolls back on error."""
    url = get_settings().sqlalchemy_url
    ensure_schema(url)
    with Session(engine_for(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_session() -> Iterator[Session]:
    """FastAPI dependency."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().sqlalchemy_url).replace("%", "%%"))
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    command.upgrade(alembic_config(url), revision)
    if revision == "head":
        _schema_checked.add(url or get_settings().sqlalchemy_url)


def head_revision() -> str | None:
    """The newest schema revision this code knows."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The database's schema revision (None: no schema yet)."""
    return MigrationContext.configure(conn).get_current_revision()


def schema_revisions(url: str | None = None) -> tuple[str | None, str | None]:
    """(the database's current revision or None when empty, the code's newest revision)."""
    with engine_for(url or get_settings().sqlalchemy_url).connect() as conn:
        return current_revision(conn), head_revision()


def describe(url: str) -> str:
    """The URL without credentials, for messages."""
    return url.split("@")[-1] if "@" in url else url


_schema_checked: set[str] = set()


def ensure_schema(url: str | None = None) -> None:
    """Once per process and URL: migrate SQLite if it is behind; refuse a PostgreSQL database that is."""
    url = url or get_settings().sqlalchemy_url
    if url in _schema_checked:
        return
    current, head = schema_revisions(url)
    if current != head:
        known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
        if current is not None and current not in known:
            raise SchemaNotReady(
                f"the database {describe(url)} is at schema {current}, which this version of Kabashoax "
                "does not know (written by a newer version?)"
            )
        if not url.startswith("sqlite"):
            state = (
                "has no tables yet" if current is None else f"is at schema {current}, the code needs {head}"
            )
            raise SchemaNotReady(f"the database {describe(url)} {state}: run `kabashoax db upgrade` first")
        migrate(url)
    _schema_checked.add(url)
