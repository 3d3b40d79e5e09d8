"""Replies that were stored but never delivered: the process died between storing and sending, or
the channel failed and the platform did not redeliver (long polling never does). The notifier loop
sends them, once: a row is marked replied in the same statement that leases it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.delivery import ReplySender, SessionFactory, lease
from bot.dialogue import Reply
from knowledge_base.models import Citizen, InboundMessage, utcnow

log = logging.getLogger(__name__)


def claim_unsent(
    session: Session, channels: list[str], *, older_than_s: float, max_age_s: float, limit: int = 50
) -> list[tuple[int, str, str, list[Reply]]]:
    """(message id, channel, address, replies) of stored-but-unsent replies, now marked as replied."""
    now = utcnow()
    replied_at, processed_at = col(InboundMessage.replied_at), col(InboundMessage.processed_at)
    due = (
        select(col(InboundMessage.id))
        .where(
            replied_at.is_(None),
            col(InboundMessage.replies).is_not(None),
            col(InboundMessage.channel).in_(channels),
            processed_at < now - timedelta(seconds=older_than_s),
            processed_at > now - timedelta(seconds=max_age_s),
        )
        .order_by(col(InboundMessage.id))
        .limit(limit)
    )
    ids = lease(session, InboundMessage, due, {"replied_at": now}, still=[replied_at.is_(None)])
    rows = session.exec(
        select(InboundMessage.id, InboundMessage.channel, Citizen.address, InboundMessage.replies)
        .join(Citizen, col(Citizen.id) == col(InboundMessage.citizen_id))
        .where(col(InboundMessage.id).in_(ids))
        .order_by(col(InboundMessage.id))
    ).all()
    session.commit()
    return [
        (mid, ch, addr, [Reply.from_dict(r) for r in reps or []])
        for mid, ch, addr, reps in rows
        if mid is not None and addr
    ]


async def resend_unsent(
    senders: Mapping[str, ReplySender],
    session_factory: SessionFactory,
    *,
    older_than_s: float,
    max_age_s: float,
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
                s.exec(sa.update(InboundMessage).where(col(InboundMessage.id) == mid).values(replied_at=None))
                s.commit()
        else:
            log.info("reply to message %s delivered late", mid)
    return len(due)
