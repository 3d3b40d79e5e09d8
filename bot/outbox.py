"""The notifier: delivers the outbox (`Notification` rows) to citizens, each exactly once in practice.

A worker claims due rows with a lease (`locked_until`, set by `bot.delivery.lease`: `SELECT … FOR
UPDATE SKIP LOCKED` on PostgreSQL, one atomic UPDATE on SQLite, whose writes are serialised). A row
is marked `sent` only after the channel's API accepted the message; a worker killed mid-batch leaves
its rows leased, and they are retried when the lease expires.

At-least-once window (honest): if the process dies after the API accepted a message but before the
`sent` commit (a few milliseconds), that one message is sent again after the lease expires. Telegram's
sendMessage has no idempotency key, so this cannot be closed from our side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import messages
from bot.delivery import (
    ChannelSender,
    PermanentError,
    Recipient,
    RetryLater,
    SessionFactory,
    TransientError,
    lease,
)
from bot.resend import resend_unsent
from bot.settings import BotSettings, get_settings
from knowledge_base.db import session_scope
from knowledge_base.models import Citizen, CitizenReport, Claim, Notification, OutboxStatus, Verdict, utcnow

log = logging.getLogger(__name__)

PULL_CHANNELS = frozenset({"web", "cli"})
NO_SENDER_WAIT_S = 300.0


def claim_due(session: Session, *, limit: int, lease_s: float, now: datetime | None = None) -> list[int]:
    """Lease up to `limit` due rows to this worker and return their ids (committed at once)."""
    now = now or utcnow()
    locked_until = col(Notification.locked_until)
    due = (
        select(col(Notification.id))
        .where(
            col(Notification.status) == OutboxStatus.pending,
            col(Notification.next_attempt_at) <= now,
            sa.or_(locked_until.is_(None), locked_until < now),
        )
        .order_by(col(Notification.id))
        .limit(limit)
    )
    ids = lease(session, Notification, due, {"locked_until": now + timedelta(seconds=lease_s)})
    session.commit()
    return ids


def render(session: Session, n: Notification) -> str | None:
    """The citizen text, built at send time from the verdict or claim (so a fix to the text applies)."""
    if n.body:
        return n.body
    if n.kind in ("verdict", "correction") and n.verdict_id is not None:
        v = session.get(Verdict, n.verdict_id)
        if v is not None:
            return messages.notification(n.kind, v.claim, v.rating, v.summary, v.url, v.published_at)
    if n.kind == "rejection" and n.claim_id is not None:
        claim = session.get(Claim, n.claim_id)
        if claim is not None:
            own = session.exec(  # quote the citizen's own words, never another citizen's
                select(CitizenReport.text).where(
                    col(CitizenReport.claim_id) == claim.id, col(CitizenReport.citizen_id) == n.citizen_id
                )
            ).first()
            return messages.rejection(own or "", claim.reject_reason or "")
    return None


def backoff_s(attempts: int, settings: BotSettings) -> float:
    return min(settings.notify_backoff_base_s * 2 ** max(attempts - 1, 0), settings.notify_backoff_max_s)


class Notifier:
    """Claims due rows, renders and sends them, and records the outcome of every attempt."""

    def __init__(
        self,
        senders: Mapping[str, ChannelSender],
        settings: BotSettings | None = None,
        session_factory: SessionFactory = session_scope,
    ) -> None:
        self.senders = senders
        self.settings = settings or get_settings()
        self.session_factory = session_factory

    async def run_once(self) -> int:
        """One batch; returns how many rows were attempted."""
        with self.session_factory() as s:
            ids = claim_due(s, limit=self.settings.notify_batch, lease_s=self.settings.notify_lease_s)
        paused: dict[str, float] = {}  # channel -> seconds Telegram/Meta asked us to wait
        for i, nid in enumerate(ids):
            await self._deliver(nid, paused)
            if paused and set(paused) >= set(self.senders):
                self._release(ids[i + 1 :], paused)
                break
        return len(ids)

    async def resend_replies(self) -> int:
        """Conversation replies stored but never delivered (the senders double as reply senders)."""
        return await resend_unsent(
            self.senders,
            self.session_factory,
            older_than_s=self.settings.resend_after_s,
            max_age_s=self.settings.resend_max_age_s,
        )

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once() + await self.resend_replies()
            except Exception:  # a DB hiccup must not end the notifier; it retries after a pause
                log.exception("notifier batch failed")
                done = 0
            if not done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.notify_poll_s)

    async def _deliver(self, nid: int, paused: dict[str, float]) -> None:
        with self.session_factory() as s:
            n = s.get(Notification, nid)
            if n is None or n.status != OutboxStatus.pending:
                return
            citizen = s.get(Citizen, n.citizen_id) if n.citizen_id is not None else None
            if citizen is None or not citizen.address or citizen.deleted_at is not None:
                self._finish(s, n, status=OutboxStatus.cancelled, error="citizen unreachable or data deleted")
                return
            channel = citizen.channel
            if channel in paused:
                self._retry(s, n, paused[channel], "waiting for channel rate limit", count=False)
                return
            if channel in PULL_CHANNELS:  # the terminal and the "Coba bot" page cannot be pushed to
                self._finish(
                    s, n, status=OutboxStatus.cancelled, error=f"{channel} chats receive no notifications"
                )
                return
            sender = self.senders.get(channel)
            if sender is None:  # not configured in this process: keep the promise for a notifier that is
                self._retry(s, n, NO_SENDER_WAIT_S, f"no sender configured for {channel}", count=False)
                return
            text = render(s, n)
            if text is None:
                self._finish(s, n, status=OutboxStatus.failed, error="nothing to render")
                return
            to = Recipient(citizen.address, channel, citizen.last_inbound_at)
        try:
            external_id = await sender.send_notification(to, text)
        except RetryLater as exc:
            paused[channel] = exc.after_s
            with self.session_factory() as s:
                n = s.get_one(Notification, nid)
                self._retry(s, n, exc.after_s, f"429: retry after {exc.after_s:g}s")
            return
        except (TransientError, PermanentError) as exc:
            with self.session_factory() as s:
                n = s.get_one(Notification, nid)
                if isinstance(exc, PermanentError) or n.attempts + 1 >= self.settings.notify_max_attempts:
                    n.attempts += 1
                    self._finish(s, n, status=OutboxStatus.failed, error=str(exc))
                else:
                    self._retry(s, n, backoff_s(n.attempts + 1, self.settings), str(exc))
            return
        with self.session_factory() as s:
            n = s.get_one(Notification, nid)
            n.attempts += 1
            n.external_id = external_id
            n.delivery_status = "accepted"
            n.sent_at = utcnow()
            self._finish(s, n, status=OutboxStatus.sent, error=None)
        log.info("notification %s (%s) sent to citizen %s", nid, n.kind, n.citizen_id)

    def _finish(self, s: Session, n: Notification, *, status: str, error: str | None) -> None:
        n.status = status
        n.last_error = error[:2000] if error else None
        n.locked_until = None
        s.add(n)
        s.commit()
        if status != OutboxStatus.sent:
            log.info("notification %s %s: %s", n.id, status, error)

    def _retry(self, s: Session, n: Notification, after_s: float, error: str, *, count: bool = True) -> None:
        if count:
            n.attempts += 1
        n.next_attempt_at = utcnow() + timedelta(seconds=after_s)
        n.last_error = error[:2000]
        n.locked_until = None
        s.add(n)
        s.commit()

    def _release(self, ids: Sequence[int], paused: dict[str, float]) -> None:
        """Every channel asked us to wait: hand the rest of the batch back, due after the pause."""
        if not ids:
            return
        with self.session_factory() as s:
            s.exec(
                sa.update(Notification)
                .where(col(Notification.id).in_(list(ids)), col(Notification.status) == OutboxStatus.pending)
                .values(locked_until=None, next_attempt_at=utcnow() + timedelta(seconds=min(paused.values())))
            )
            s.commit()
