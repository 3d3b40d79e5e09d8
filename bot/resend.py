"""Replies that were stored but never delivered: the process died between storing and sending, or
the channel failed and the platform did not redeliver (long polling never does). The notifier loop
sends them, once: a row is marked replied in the same statement that claims it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core import SessionFactory
from bot.dialogue import Reply
from knowledge_base.models import Citizen, InboundMessage, utcnow

log = logging.getLogger(__name__)


class ReplySender(Protocol):
    async def send(self, address: str, replies: list[Reply]) -> None: ...


def claim_unsent(
    session: Session, channels: list[str], *, older_than_s: float, max_age_s: float, limit: int = 50
) -> list[tuple[int, str, str, list[Reply]]]:
    """(message id, channel, address, replies) of stored-but-unsent replies, now marked as replied."""
    now = utcnow()
    due = (
        select(InboundMessage.id)
        .where(
            InboundMessage.replied_at.is_(None),
            InboundMessage.replies.is_not(None),
            InboundMessage.channel.in_(channels),
            InboundMessage.processed_at < now - timedelta(seconds=older_than_s),
            InboundMessage.processed_at > now - timedelta(seconds=max_age_s),
        )
        .order_by(InboundMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = (
        session.exec(
            sa.update(InboundMessage)
            .where(InboundMessage.id.in_(due.scalar_subquery()), InboundMessage.replied_at.is_(None))
            .values(replied_at=now)
            .returning(InboundMessage.id)
        )
        .scalars()
        .all()
    )
    rows = session.exec(
        select(InboundMessage.id, InboundMessage.channel, Citizen.address, InboundMessage.replies)
        .join(Citizen, Citizen.id == InboundMessage.citizen_id)
        .where(InboundMessage.id.in_(list(ids)))
    ).all()
    session.commit()
    return [(mid, ch, addr, [Reply.from_dict(r) for r in reps or []]) for mid, ch, addr, reps in rows if addr]


async def resend_unsent(
    senders: dict[str, ReplySender], session_factory: SessionFactory, *, older_than_s: float, max_age_s: float
) -> int:
    """Deliver what is due; a failed send is un-marked so the next round tries again."""
    with session_factory() as s:
        due = claim_unsent(s, list(senders), older_than_s=older_than_s, max_age_s=max_age_s)
    for mid, channel, address, replies in due:
        try:
            if replies:
                await senders[channel].send(address, replies)
        except Exception as exc:  # the channel is down: keep the reply for the next round
            log.warning("resending reply to message %s failed: %s", mid, type(exc).__name__)
            with session_factory() as s:
                s.exec(sa.update(InboundMessage).where(InboundMessage.id == mid).values(replied_at=None))
                s.commit()
        else:
            log.info("reply to message %s delivered late", mid)
    return len(due)
