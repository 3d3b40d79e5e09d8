"""Fixtures of the bot tests: a core on the real databases (with the stand-ins of
`tests.helpers.stubs`), a published verdict, the fake Bot API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from bot.core import BotCore
from bot.settings import BotSettings
from knowledge_base.models import Verdict
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.bot import bot_settings
from tests.helpers.db import reusing
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
