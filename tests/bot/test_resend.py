"""Replies stored but never delivered are sent later by the notifier loop, exactly once."""

from __future__ import annotations

import asyncio
import contextlib

from sqlmodel import Session, select

from bot.core import BotCore
from bot.resend import resend_unsent
from knowledge_base.models import InboundMessage
from tests.helpers.bot import Outbox, env
from tests.helpers.db import reusing


def test_unsent_reply_is_delivered_once_later(core: BotCore, session: Session) -> None:
    with contextlib.suppress(ConnectionError):
        asyncio.run(core.handle(env("rs1", "jam buang sampah?", address="rs-citizen"), Outbox(fail=1)))
    msg = session.exec(select(InboundMessage).where(InboundMessage.external_id == "rs1")).one()
    assert msg.replies and msg.replied_at is None

    later = Outbox()
    factory = reusing(session)
    assert asyncio.run(resend_unsent({"telegram": later}, factory, older_than_s=0, max_age_s=3600)) >= 1
    assert [a for a, _ in later.sent] == ["rs-citizen"] and "Sampah diangkut" in later.sent[0][1][0].text
    asyncio.run(resend_unsent({"telegram": later}, factory, older_than_s=0, max_age_s=3600))
    asyncio.run(core.handle(env("rs1", "jam buang sampah?", address="rs-citizen"), later))  # a redelivery
    assert len(later.sent) == 1


def test_fresh_old_or_failed_resends_are_left_for_later(core: BotCore, session: Session) -> None:
    with contextlib.suppress(ConnectionError):
        asyncio.run(core.handle(env("rs2", "halo", address="rs-other"), Outbox(fail=1)))
    factory = reusing(session)
    quiet = Outbox()
    asyncio.run(resend_unsent({"telegram": quiet}, factory, older_than_s=600, max_age_s=3600))  # too fresh
    asyncio.run(resend_unsent({"telegram": quiet}, factory, older_than_s=0, max_age_s=0))  # too old
    assert quiet.sent == []
    down = Outbox(fail=99)
    asyncio.run(resend_unsent({"telegram": down}, factory, older_than_s=0, max_age_s=3600))
    msg = session.exec(select(InboundMessage).where(InboundMessage.external_id == "rs2")).one()
    session.refresh(msg)
    assert msg.replied_at is None  # un-marked: the next round tries again
    asyncio.run(resend_unsent({"telegram": quiet}, factory, older_than_s=0, max_age_s=3600))
    assert [a for a, _ in quiet.sent] == ["rs-other"]
