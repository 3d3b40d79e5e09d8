"""The notifier: delivers the outbox (`Notification` rows) to citizens and the city's channel, each
exactly once in practice.

A worker claims due rows with a lease (`locked_until`, set by `bot.delivery.lease`: `SELECT … FOR
UPDATE SKIP LOCKED` on PostgreSQL, one atomic UPDATE on SQLite, whose writes are serialised). A row
is marked `sent` only after the channel's API accepted the message; a worker killed mid-batch leaves
its rows leased, and they are retried when the lease expires. A row is only sent while its lease has
at least half its time left, so a slow batch never overlaps the next lease of its rows.

Priority: verdicts, corrections, rejections and channel posts are leased before digest rows, so a
digest to 10,000 subscribers delays a verdict by one batch at most, never by the whole digest. Pace:
`bot.throttle` spaces sends to the channels' broadcast limits and pauses a channel for its 429's
`retry_after` (its rows are not even leased meanwhile).

At-least-once window (honest): if the process dies after the API accepted a message but before the
`sent` commit (a few milliseconds), that one message is sent again after the lease expires. Telegram's
sendMessage has no idempotency key, so this cannot be closed from our side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import metrics_hooks
from bot.delivery import (
    ChannelSender,
    PermanentError,
    Recipient,
    RetryLater,
    SessionFactory,
    TransientError,
    Unreachable,
    lease,
)
from bot.notices import CHANNEL_POSTS, DIGEST_KINDS, Views, render
from bot.resend import resend_unsent
from bot.settings import BotSettings, get_settings
from bot.throttle import Throttle
from knowledge_base.db import session_scope
from knowledge_base.digests import reachable_subscribers
from knowledge_base.models import Citizen, Notification, OutboxStatus, utcnow

log = logging.getLogger(__name__)

PULL_CHANNELS = frozenset({"web", "cli"})
NO_SENDER_WAIT_S = 300.0
UNREACHABLE = "citizen unreachable or data deleted"
# A verdict or claim that is gone. Notifiers before digest delivery also wrote it on every digest row
# (`requeue_legacy`); digest rows now say which digest or verdict is not published instead.
NOTHING_TO_RENDER = "nothing to render"


def claim_due(
    session: Session,
    *,
    limit: int,
    lease_s: float,
    now: datetime | None = None,
    skip_channels: Sequence[str] = (),
) -> list[int]:
    """Lease up to `limit` due rows to this worker, digests last, and return their ids (committed)."""
    now = now or utcnow()
    locked_until = col(Notification.locked_until)
    due = (
        select(col(Notification.id))
        .where(
            col(Notification.status) == OutboxStatus.pending,
            col(Notification.next_attempt_at) <= now,
            sa.or_(locked_until.is_(None), locked_until < now),
        )
        .order_by(sa.case((col(Notification.kind) == "digest", 1), else_=0), col(Notification.id))
        .limit(limit)
    )
    if skip_channels:
        due = due.where(col(Notification.channel).not_in(list(skip_channels)))
    ids = lease(session, Notification, due, {"locked_until": now + timedelta(seconds=lease_s)})
    session.commit()
    return ids


def requeue_legacy(session: Session) -> int:
    """Digest rows an older notifier failed ("nothing to render") and channel posts it cancelled (no
    citizen) go back to the queue once: they were never sent. Commits; returns how many."""
    kind, status, error = col(Notification.kind), col(Notification.status), col(Notification.last_error)
    legacy = sa.or_(
        sa.and_(kind == "digest", status == OutboxStatus.failed, error == NOTHING_TO_RENDER),
        sa.and_(
            kind.in_(sorted(CHANNEL_POSTS)),
            status == OutboxStatus.cancelled,
            error == UNREACHABLE,
            col(Notification.citizen_id).is_(None),
            col(Notification.channel_target).is_not(None),
        ),
    )
    count = session.exec(
        sa.update(Notification)
        .where(legacy)
        .values(status=OutboxStatus.pending, last_error=None, locked_until=None, next_attempt_at=utcnow())
        .execution_options(preserve_rowcount=True)
    ).rowcount
    session.commit()
    if count:
        log.info("%d digest row(s) and channel post(s) left by an older notifier queued again", count)
    return int(count)


def _unrenderable(n: Notification) -> str:
    if n.kind == "verdict_channel":
        return f"verdict {n.verdict_id} is no longer current"
    if n.kind in DIGEST_KINDS:
        return f"digest {n.digest_id} is not published"
    return NOTHING_TO_RENDER


def _stop_digests(s: Session, citizen_id: int | None) -> None:
    """A citizen who blocked the bot is unsubscribed, so no later digest is queued for them."""
    citizen = s.get(Citizen, citizen_id) if citizen_id is not None else None
    if citizen is not None and citizen.subscribed_digest:
        citizen.subscribed_digest = False
        s.add(citizen)
        s.commit()
        log.info("citizen %s blocked the bot: unsubscribed from digests", citizen_id)


def backoff_s(attempts: int, settings: BotSettings) -> float:
    return min(settings.notify_backoff_base_s * 2 ** max(attempts - 1, 0), settings.notify_backoff_max_s)


def throttle_for(settings: BotSettings) -> Throttle:
    return Throttle(
        {"telegram": settings.telegram_max_per_s, "whatsapp": settings.whatsapp_max_per_s},
        {"telegram": settings.telegram_chat_max_per_min},
    )


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
        self.throttle = throttle_for(self.settings)
        self._legacy_checked = False

    async def run_once(self) -> int:
        """One batch (sent `BOT_NOTIFY_CONCURRENCY` at a time); returns how many rows were attempted."""
        if not self._legacy_checked:
            with self.session_factory() as s:
                requeue_legacy(s)
            self._legacy_checked = True
        lease_s = self.settings.notify_lease_s
        with self.session_factory() as s:
            ids = claim_due(
                s, limit=self.settings.notify_batch, lease_s=lease_s, skip_channels=self.throttle.paused()
            )
        send_by = time.monotonic() + lease_s / 2
        views: Views = {}
        slots = asyncio.Semaphore(self.settings.notify_concurrency)

        async def deliver(nid: int) -> None:
            async with slots:
                await self._deliver(nid, views, send_by)

        results = await asyncio.gather(*(deliver(nid) for nid in ids), return_exceptions=True)
        for nid, result in zip(ids, results, strict=True):
            if isinstance(result, BaseException):  # e.g. the DB went away: the lease brings it back
                log.error("notification %s: %s", nid, type(result).__name__, exc_info=result)
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

    def _recipient(self, s: Session, n: Notification) -> Recipient | str:
        """Where the row goes, or why it goes nowhere (the row is then cancelled)."""
        if n.citizen_id is None:
            if n.kind in CHANNEL_POSTS and n.channel_target:
                return Recipient(n.channel_target, n.channel, None)
            return UNREACHABLE
        citizen = s.get(Citizen, n.citizen_id)
        if citizen is None or not citizen.address or citizen.deleted_at is not None:
            return UNREACHABLE
        if n.kind == "digest" and not self._subscribed(s, citizen):
            return "no longer subscribed (unsubscribed or blocked since the digest was published)"
        if citizen.channel in PULL_CHANNELS:  # the terminal and the "Coba bot" page cannot be pushed to
            return f"{citizen.channel} chats receive no notifications"
        return Recipient(citizen.address, citizen.channel, citizen.last_inbound_at)

    def _subscribed(self, s: Session, citizen: Citizen) -> bool:
        """The publish rule (`digests.reachable_subscribers`), checked again at send time."""
        if citizen.pseudonym in self.settings.blocked_pseudonyms:
            return False
        still = select(col(Citizen.id)).where(col(Citizen.id) == citizen.id, reachable_subscribers())
        return s.exec(still).first() is not None

    async def _deliver(self, nid: int, views: Views, send_by: float) -> None:
        with self.session_factory() as s:
            n = s.get(Notification, nid)
            if n is None or n.status != OutboxStatus.pending:
                return
            to = self._recipient(s, n)
            if isinstance(to, str):
                self._finish(s, n, status=OutboxStatus.cancelled, error=to)
                return
            channel, post = to.channel, n.citizen_id is None
            sender = self.senders.get(channel)
            if sender is None:  # not configured in this process: keep the promise for a notifier that is
                self._retry(s, n, NO_SENDER_WAIT_S, f"no sender configured for {channel}", count=False)
                return
            if self.throttle.paused_for(channel):
                self._retry(
                    s, n, self.throttle.paused_for(channel), "waiting for channel rate limit", count=False
                )
                return
            notice = render(s, n, views=views)
            if notice is None:  # a verdict withdrawn or expired before its channel post is not posted
                status = OutboxStatus.cancelled if n.kind == "verdict_channel" else OutboxStatus.failed
                self._finish(s, n, status=status, error=_unrenderable(n))
                return
        await self.throttle.wait(channel, to.address if post else None)
        wait = self.throttle.paused_for(channel)  # a 429 may have come in while this row waited
        if wait or time.monotonic() > send_by:
            with self.session_factory() as s:
                n = s.get_one(Notification, nid)
                reason = "waiting for channel rate limit" if wait else "lease too short to send: next batch"
                self._retry(s, n, wait, reason, count=False)
            return
        try:
            with metrics_hooks.notification_delivery(channel):
                external_id = await sender.send_notification(to, notice)
        except RetryLater as exc:
            if not post:  # flood control is the bot's; a channel's own slow mode concerns that chat only
                self.throttle.pause(channel, exc.after_s)
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
                    if post:
                        log.warning("post to the Telegram channel failed for good: %s", exc)
                    elif isinstance(exc, Unreachable):
                        _stop_digests(s, n.citizen_id)
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
        log.info(
            "notification %s (%s) sent to %s",
            nid,
            n.kind,
            "the channel" if post else f"citizen {n.citizen_id}",
        )

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
