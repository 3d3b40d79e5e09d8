"""Fixtures of the bot tests: a core on the real databases (with the stand-ins of
`tests.helpers.stubs`), a published verdict, the fake Bot API, a database a notifier process shares."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from bot.core import BotCore
from bot.settings import BotSettings
from knowledge_base.db import engine_for, migrate
from knowledge_base.models import Verdict
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.bot import bot_settings
from tests.helpers.db import POSTGRES_URL, reusing
from tests.helpers.stubs import stub_services


@pytest.fixture
def settings() -> BotSettings:
    return bot_settings()


@pytest.fixture
def core(session: Session, settings: BotSettings) -> BotCore:
    return BotCore(stub_services(), settings, reusing(session))


@pytest.fixture
def verdict(session: Session) -> Verdict:
    v = Verdict(
        claim="Vaksin campak di Kupang mengandung chip pelacak",
        rating="HOAKS",
        summary="Dinas Kesehatan memastikan vaksin campak tidak mengandung chip apa pun.",
        url="https://cekfakta.example/vaksin-chip",
        published_at=datetime(2026, 2, 1, tzinfo=UTC),
        status="published",
    )
    session.add(v)
    session.commit()
    return v


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def worker_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A committed database the notifier subprocess can share: a file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'notify.sqlite3'}"
        migrate(url)
        yield url
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    migrate(url)
    yield url
    engine_for(url).dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
