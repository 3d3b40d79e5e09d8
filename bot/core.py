"""The channel-agnostic conversation core: persist → understand → look up → reply → remember.

Every inbound message is stored (idempotently on the channel's id) before anything else happens,
and its replies are stored before they are sent. A redelivered message therefore re-sends the
stored replies instead of recomputing them, and a message already replied to is never answered again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from bot import citizens, dialogue, messages, metrics_hooks
from bot.delivery import SendReplies, SessionFactory
from bot.dialogue import Facts, Incoming, Intent, Need, Reply, Route
from bot.settings import BotSettings, get_settings
from knowledge_base.db import session_scope
from knowledge_base.models import Citizen, Claim, Feedback, InboundMessage, Verdict, utcnow
from nlu.result import NluResult

if TYPE_CHECKING:  # both load the embedding model's libraries; the core imports them when first used
    from knowledge_base.answer import Answer
    from knowledge_base.matching import MatchResult

log = logging.getLogger(__name__)

LOCK_RETRIES = 6


class Classify(Protocol):
    """`nlu.client.NluClient.parse_sync`."""

    def __call__(self, text: str, /) -> NluResult: ...


class AnswerQuestion(Protocol):
    """`knowledge_base.answer.answer_question`."""

    def __call__(self, text: str, /, *, session: Session) -> Answer: ...


class MatchClaim(Protocol):
    """`knowledge_base.matching.match_claim`."""

    def __call__(self, text: str, /, *, session: Session) -> MatchResult: ...


class KnownForward(Protocol):
    """`knowledge_base.matching.known_forward`: hashes only, None when no model-free answer exists."""

    def __call__(self, text: str, /, *, session: Session) -> MatchResult | None: ...


class ReportClaim(Protocol):
    """`knowledge_base.tickets.report_claim`."""

    def __call__(
        self, text: str, /, *, session: Session, citizen_id: int | None, message_id: int | None
    ) -> Claim: ...


@dataclass
class Services:
    """The knowledge base and NLU as the core uses them, typed with their own result types, so a change
    there fails type checking here; production wires the real ones, tests small stand-ins."""

    parse: Classify
    answer: AnswerQuestion
    match: MatchClaim
    report: ReportClaim
    known: KnownForward | None = None  # asked before NLU: a viral forward needs no model


def default_services() -> Services:
    """The real NLU client and knowledge base (imported late: they load models on first use). The NLU
    fallback embeds through the knowledge base's query-vector cache, so a message that is classified,
    then matched or searched, is embedded once."""
    from knowledge_base.answer import answer_question
    from knowledge_base.embeddings import query_vectors
    from knowledge_base.matching import known_forward, match_claim
    from knowledge_base.tickets import report_claim
    from nlu.client import NluClient
    from nlu.fallback import get_fallback

    client = NluClient(fallback=lambda: get_fallback(embed=query_vectors))
    return Services(
        parse=client.parse_sync,
        answer=answer_question,
        match=match_claim,
        report=report_claim,
        known=known_forward,
    )


@dataclass(frozen=True)
class Envelope:
    """A message as the core sees it: who (channel + address), which (external id), what (incoming)."""

    channel: str
    external_id: str
    address: str
    incoming: Incoming
    meta: dict[str, Any] = field(default_factory=dict)  # sanitised: never ids or phone numbers


@dataclass
class Plan:
    """What phase 1 (reads) decided; phase 2 does the writes. `route` None means: send `fixed`."""

    state: dict[str, Any]
    route: Route | None
    facts: Facts
    fixed: list[Reply] = field(default_factory=list)
    nlu: NluResult | None = None


@dataclass(frozen=True)
class Turn:
    message_id: int | None
    replies: list[Reply]
    send: bool  # False when these replies were already delivered earlier


class BotCore:
    """One instance per process; safe to share between channels and between concurrent messages."""

    def __init__(
        self,
        services: Services,
        settings: BotSettings | None = None,
        session_factory: SessionFactory = session_scope,
    ) -> None:
        self.services = services
        self.settings = settings or get_settings()
        self.session_factory = session_factory
        storage = storage_from_string(self.settings.rate_limit_storage)
        self._limiter = MovingWindowRateLimiter(storage)
        self._limit = parse_limit(self.settings.rate_limit)
        self._warn_limit = parse_limit("1/minute")
        # SQLite has one writer; serialising this process's write phases avoids lock conflicts between
        # its own threads (other processes are covered by the retry in `process`).
        self._write_lock = threading.Lock()

    async def handle(self, env: Envelope, send: SendReplies) -> Turn:
        """Process (in a worker thread: models and the DB block) and deliver the replies once."""
        turn = await asyncio.to_thread(self.process, env)
        if turn.send and turn.message_id is not None:
            if turn.replies:
                with metrics_hooks.replies_delivery(env.channel, turn):
                    await send(env.address, turn.replies)
            await asyncio.to_thread(self.mark_replied, turn.message_id)
        return turn

    def process(self, env: Envelope) -> Turn:
        """`_process`, retried when SQLite reports a lock conflict.

        With WAL and deferred transactions, a transaction that read before another one committed cannot
        upgrade to a writer (SQLITE_BUSY_SNAPSHOT, no waiting helps). Retrying is safe: the message is
        found again by its external id, and nothing of a failed attempt was committed after it.
        """
        for attempt in range(LOCK_RETRIES):
            try:
                return self._process(env)
            except OperationalError as exc:
                if "locked" not in str(exc.orig) or attempt == LOCK_RETRIES - 1:
                    raise
                log.info("database busy on message %s, retry %d", env.external_id, attempt + 1)
                time.sleep(random.uniform(0.02, 0.1) * 2**attempt)
        raise AssertionError("unreachable")

    def _process(self, env: Envelope) -> Turn:
        with self.session_factory() as s:
            lock = self._lock_for(s)
            with lock:
                citizen = citizens.get_or_create(s, env.channel, env.address, self.settings.pseudonym_key)
                if citizen.blocked or citizen.pseudonym in self.settings.blocked_pseudonyms:
                    log.info("message from blocked citizen %s dropped", citizen.pseudonym[:8])
                    s.commit()
                    return Turn(None, [], send=False)
                msg, fresh = self._persist(s, env, citizen)
                if not fresh and msg.replies is not None:
                    log.info("redelivery of message %s from %s", msg.id, citizen.pseudonym[:8])
                    return Turn(
                        msg.id, [Reply.from_dict(r) for r in msg.replies], send=msg.replied_at is None
                    )
                citizen.last_inbound_at = utcnow()
                s.add(citizen)
                s.commit()  # the message is safe before any processing starts
            msg_id, citizen_id, who = msg.id, citizen.id, citizen.pseudonym[:8]
            try:
                plan = self._understand(s, env, citizen, msg_id)
                s.commit()  # end phase 1's snapshot (keeping any vectors the KB cached) before writing
                with lock:
                    citizen, msg = s.get_one(Citizen, citizen_id), s.get_one(InboundMessage, msg_id)
                    replies = self._act(s, plan, citizen, msg)
                    self._store(s, msg, replies, plan.nlu)
                    s.commit()
                metrics_hooks.handled(env, plan, msg, self.services.parse)
            except OperationalError:
                raise  # database trouble (a lock): `process` retries the whole message
            except Exception as exc:  # one bad message must not stop the bot; staff can see the error
                s.rollback()
                log.exception("processing message %s from %s failed", msg_id, who)
                replies = [Reply(messages.ERROR)]
                with lock:
                    msg = s.get_one(InboundMessage, msg_id)
                    msg.error = f"{type(exc).__name__}: {exc}"[:2000]
                    self._store(s, msg, replies, None)
                    s.commit()
                metrics_hooks.failed(env.channel, msg)
            return Turn(msg_id, replies, send=True)

    def mark_replied(self, message_id: int) -> None:
        """One UPDATE under the write lock: its commit must not land inside another thread's write phase."""
        with self.session_factory() as s, self._lock_for(s):
            s.exec(
                sa.update(InboundMessage)
                .where(col(InboundMessage.id) == message_id, col(InboundMessage.replied_at).is_(None))
                .values(replied_at=utcnow())
            )
            s.commit()

    def _lock_for(self, s: Session) -> AbstractContextManager[Any]:
        return self._write_lock if s.get_bind().dialect.name == "sqlite" else nullcontext()

    # ------------------------------------------------------------------ steps

    def _persist(self, s: Session, env: Envelope, citizen: Citizen) -> tuple[InboundMessage, bool]:
        """Insert the message once; a duplicate delivery finds the first copy."""
        text = env.incoming.text[: self.settings.max_message_chars * 4]
        msg = InboundMessage(
            channel=env.channel,
            external_id=env.external_id,
            citizen_id=citizen.id,
            kind=env.incoming.kind,
            text=text or None,
            payload=env.meta,
        )
        try:
            with s.begin_nested():
                s.add(msg)
            return msg, True
        except IntegrityError:
            existing = s.exec(
                select(InboundMessage).where(
                    InboundMessage.channel == env.channel, InboundMessage.external_id == env.external_id
                )
            ).one()
            return existing, False

    def _understand(self, s: Session, env: Envelope, citizen: Citizen, msg_id: int | None) -> Plan:
        """Phase 1, reads only: abuse checks, NLU, route, and the knowledge-base look-ups."""
        state = dict(citizen.state or {})
        if not self._limiter.hit(self._limit, env.channel, citizen.pseudonym):
            log.info("rate limit hit by %s", citizen.pseudonym[:8])
            warn = self._limiter.hit(self._warn_limit, "warn", env.channel, citizen.pseudonym)
            return Plan(state, None, Facts(), fixed=[Reply(messages.RATE_LIMITED)] if warn else [])
        incoming = env.incoming
        if len(incoming.text) > self.settings.max_message_chars:
            return Plan(
                state,
                None,
                Facts(),
                fixed=[Reply(messages.TOO_LONG.format(limit=self.settings.max_message_chars))],
            )
        nlu = None
        intent = None
        known = None
        if dialogue.needs_intent(state, incoming):
            # A forward of a checked claim, or a verbatim repeat of a text matched before, is known
            # from its hashes: answered as a claim without running NLU or any model.
            if self.services.known is not None:
                known = self.services.known(incoming.text, session=s)
            if known is None:
                nlu = self.services.parse(incoming.text)
                intent = Intent(nlu.intent, float(nlu.confidence))
        rt = (
            Route(Need.match, text=incoming.text.strip())
            if known is not None
            else dialogue.route(
                state,
                incoming,
                intent,
                min_confidence=self.settings.min_intent_confidence,
                claim_min_words=self.settings.claim_min_words,
            )
        )
        facts = Facts()
        if rt.need is Need.answer:
            facts.answer = self.services.answer(rt.text, session=s)
        elif rt.need is Need.match:
            result = known or self.services.match(rt.text, session=s)
            facts.decision = result.decision
            if result.decision == "auto" and result.verdict is not None:
                facts.candidates = [result.verdict]
            elif result.decision == "suggest" and result.candidates:
                facts.candidates = list(result.candidates)
            else:
                facts.decision = "none"  # becomes a ticket in phase 2
        elif rt.need is Need.verdict:
            from knowledge_base.matching import VerdictCandidate  # loaded by `match` in production

            verdict = s.get(Verdict, rt.arg)
            if verdict is not None and verdict.is_servable():
                facts.candidates = [VerdictCandidate.from_verdict(verdict)]
        log.info(
            "message %s from %s: %s/%s",
            msg_id,
            citizen.pseudonym[:8],
            rt.need.value,
            rt.say or intent and intent.name,
        )
        return Plan(state, rt, facts, nlu=nlu)

    def _act(self, s: Session, plan: Plan, citizen: Citizen, msg: InboundMessage) -> list[Reply]:
        """Phase 2, the writes (tickets, subscriptions, deletion, feedback) and the dialogue's replies."""
        rt, facts, state = plan.route, plan.facts, plan.state
        if rt is None:
            return plan.fixed
        if (rt.need is Need.match and facts.decision == "none") or rt.need is Need.report:
            source = msg.id
            if rt.need is Need.report:  # "none of these": the ticket quotes the message that asked
                pending = state.get("pending_message_id")
                if pending is not None and s.get(InboundMessage, pending) is not None:
                    source = pending
            claim = self.services.report(rt.text, session=s, citizen_id=citizen.id, message_id=source)
            facts.ask_count = claim.ask_count
        elif rt.need in (Need.subscribe, Need.unsubscribe):
            citizen.subscribed_digest = rt.need is Need.subscribe
        elif rt.need is Need.delete:
            d = citizens.delete_data(s, citizen, keep_message_id=msg.id)
            facts.deleted = (d.messages, d.reports, d.notifications)
        elif rt.need is Need.feedback:
            rated = s.get(InboundMessage, rt.arg)
            if rated is not None and rated.citizen_id == citizen.id:  # only one's own answers
                s.add(Feedback(message_id=rated.id, helpful=rt.say == "fb1"))
        new_state, replies = dialogue.respond(
            state, rt, facts, message_id=msg.id, new_session=secrets.token_hex(4)
        )
        if citizen.deleted_at is None:
            citizen.state = new_state
        s.add(citizen)
        return replies

    @staticmethod
    def _store(s: Session, msg: InboundMessage, replies: list[Reply], nlu: NluResult | None) -> None:
        if nlu is not None:
            msg.intent, msg.confidence, msg.nlu_source = nlu.intent, float(nlu.confidence), nlu.source
        msg.replies = [r.to_dict() for r in replies]
        msg.processed_at = utcnow()
        s.add(msg)
