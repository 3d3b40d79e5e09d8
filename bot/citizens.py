"""Citizens as staff may see them: a keyed-hash pseudonym, never the chat id or phone number.

The raw address is kept only on the `Citizen` row because delivery needs it; `delete_data`
removes it together with the citizen's messages and leaves only anonymous counts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from knowledge_base.models import (
    Citizen,
    CitizenReport,
    Claim,
    Feedback,
    InboundMessage,
    Notification,
    OutboxStatus,
    utcnow,
)

log = logging.getLogger(__name__)
# Shown to staff where a ticket's text came only from a citizen who deleted their data.
REMOVED_TEXT = "[teks dihapus atas permintaan warga]"


def pseudonym(channel: str, address: str, key: bytes) -> str:
    """Stable per channel and address, but not reversible and not recomputable without the key."""
    return hmac.new(key, f"{channel}:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def get_or_create(session: Session, channel: str, address: str, key: bytes) -> Citizen:
    """The citizen behind an address; two workers racing on a first message end up with one row."""
    pid = pseudonym(channel, address, key)
    found = session.exec(select(Citizen).where(Citizen.channel == channel, Citizen.pseudonym == pid)).first()
    if found:
        if found.address != address:  # e.g. after a data deletion the row was anonymised
            found.address = address
        return found
    citizen = Citizen(channel=channel, pseudonym=pid, address=address)
    try:
        with session.begin_nested():
            session.add(citizen)
    except IntegrityError:
        return session.exec(select(Citizen).where(Citizen.channel == channel, Citizen.pseudonym == pid)).one()
    return citizen


@dataclass(frozen=True)
class Deleted:
    messages: int
    reports: int
    notifications: int


def delete_data(session: Session, citizen: Citizen, *, keep_message_id: int | None = None) -> Deleted:
    """Delete messages and address; keep anonymous counts (claim ask counts, feedback tallies).

    The message that asked for the deletion is kept, emptied and unlinked, only so that a redelivery
    of it is still recognised as already handled.
    """
    cid = citizen.id
    own_texts = session.exec(
        select(CitizenReport.claim_id, CitizenReport.text).where(CitizenReport.citizen_id == cid)
    ).all()
    msg_ids = list(session.exec(select(InboundMessage.id).where(InboundMessage.citizen_id == cid)).all())
    if msg_ids:
        session.exec(sa.update(Feedback).where(col(Feedback.message_id).in_(msg_ids)).values(message_id=None))
    reports = session.exec(
        sa.update(CitizenReport)
        .where(col(CitizenReport.citizen_id) == cid)
        .values(citizen_id=None, text=None, message_id=None)
    ).rowcount
    _retext_tickets(session, own_texts)
    pending = session.exec(
        sa.update(Notification)
        .where(col(Notification.citizen_id) == cid, col(Notification.status) == OutboxStatus.pending)
        .values(status=OutboxStatus.cancelled, last_error="citizen deleted their data", body="")
    ).rowcount
    session.exec(sa.update(Notification).where(col(Notification.citizen_id) == cid).values(citizen_id=None))
    to_delete = [m for m in msg_ids if m != keep_message_id]
    if to_delete:
        session.exec(sa.delete(InboundMessage).where(col(InboundMessage.id).in_(to_delete)))
    if keep_message_id is not None:
        session.exec(
            sa.update(InboundMessage)
            .where(col(InboundMessage.id) == keep_message_id)
            .values(citizen_id=None, text=None, payload={})
        )
    citizen.address = None
    citizen.pseudonym = f"deleted-{uuid.uuid4().hex}"
    citizen.state = {}
    citizen.subscribed_digest = False
    citizen.deleted_at = utcnow()
    session.add(citizen)
    log.info("citizen data deleted", extra={"citizen_id": cid, "messages": len(msg_ids), "reports": reports})
    return Deleted(messages=len(msg_ids), reports=reports, notifications=pending)


def _retext_tickets(session: Session, own_texts: Sequence[tuple[int, str | None]]) -> None:
    """A ticket whose representative text is the deleting citizen's words gets another asker's text.

    Only when no other citizen's words remain does the ticket show a removal notice; its hash and
    vector stay, so later forwards of the same message still join it.
    """
    for claim_id, text in own_texts:
        claim = session.get(Claim, claim_id)
        if claim is None or text is None or claim.text != text:
            continue
        other = session.exec(
            select(CitizenReport.text)
            .where(CitizenReport.claim_id == claim_id, col(CitizenReport.text).is_not(None))
            .order_by(col(CitizenReport.created_at))
        ).first()
        claim.text = other or REMOVED_TEXT
        session.add(claim)
