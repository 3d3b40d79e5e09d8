"""The channel-agnostic conversation core: persist → understand → look up → reply → remember.

Every inbound message is stored (idempotently on the channel's id) before anything else happens,
and its replies are stored before they are sent. A redelivered message therefore re-sends the
stored replies instead of recomputing them, and a message already replied to is never answered again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot import citizens, dialogue, messages
from bot.dialogue import Facts, Incoming, Intent, Need, Reply, Route, VerdictView
from bot.settings import BotSettings, get_settings
from knowledge_base.db import session_scope
from knowledge_base.models import Citizen, Feedback, InboundMessage, Verdict, VerdictStatus, utcnow

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]
SendFn = Callable[[str, list[Reply]], Awaitable[None]]


@dataclass
class Services:
    """The knowledge base and NLU as the core uses them; production wires the real ones."""

    parse: Callable[[str], Any]  # -> NluResult (intent, confidence, source)
    answer: Callable[..., Any]  # (text, *, session) -> Answer
    match: Callable[..., Any]  # (text, *, session) -> MatchResult
    report: Callable[..., Any]  # (text, *, session, citizen_id, message_id) -> Claim


def default_services() -> Services:
    """The real NLU client and knowledge base (imported late: they load models on first use)."""
    from knowledge_base.answer import answer_question
    from knowledge_base.matching import match_claim
    from knowledge_base.tickets import report_claim
    from nlu.client import get_client

    client = get_client()
    return Services(parse=client.parse_sync, answer=answer_question, match=match_claim, report=report_claim)


@dataclass(frozen=True)
class Envelope:
    """A message as the core sees it: who (channel + address), which (external id), what (incoming)."""

    channel: str
    external_id: str
    address: str
    incoming: Incoming
    meta: dict[str, Any] = field(default_factory=dict)  # sanitised: never ids or phone numbers


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

    async def handle(self, env: Envelope, send: SendFn) -> Turn:
        """Process (in a worker thread: models and the DB block) and deliver the replies once."""
        turn = await asyncio.to_thread(self.process, env)
        if turn.send and turn.message_id is not None:
            if turn.replies:
                await send(env.address, turn.replies)
            await asyncio.to_thread(self.mark_replied, turn.message_id)
        return turn

    def process(self, env: Envelope) -> Turn:
        with self.session_factory() as s:
            citizen = citizens.get_or_create(s, env.channel, env.address, self.settings.pseudonym_key)
            who = citizen.pseudonym[:8]
            if citizen.blocked or citizen.pseudonym in self.settings.blocked_pseudonyms:
                log.info("message from blocked citizen %s dropped", who)
                s.commit()
                return Turn(None, [], send=False)
            msg, fresh = self._persist(s, env, citizen)
            if not fresh and msg.replies is not None:
                log.info("redelivery of message %s from %s", msg.id, who)
                return Turn(msg.id, [Reply.from_dict(r) for r in msg.replies], send=msg.replied_at is None)
            citizen.last_inbound_at = utcnow()
            s.add(citizen)
            s.commit()  # the message is safe before any processing starts
            try:
                replies = self._reply(s, env, citizen, msg)
            except Exception as exc:  # one bad message must not stop the bot; staff can see the error
                log.exception("processing message %s from %s failed", msg.id, who)
                s.rollback()
                msg = s.get(InboundMessage, msg.id)
                msg.error = f"{type(exc).__name__}: {exc}"[:2000]
                replies = [Reply(messages.ERROR)]
            msg.replies = [r.to_dict() for r in replies]
            msg.processed_at = utcnow()
            s.add(msg)
            s.commit()
            return Turn(msg.id, replies, send=True)

    def mark_replied(self, message_id: int) -> None:
        with self.session_factory() as s:
            msg = s.get(InboundMessage, message_id)
            if msg is not None and msg.replied_at is None:
                msg.replied_at = utcnow()
                s.add(msg)
                s.commit()

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

    def _reply(self, s: Session, env: Envelope, citizen: Citizen, msg: InboundMessage) -> list[Reply]:
        who = citizen.pseudonym[:8]
        if not self._limiter.hit(self._limit, env.channel, citizen.pseudonym):
            log.info("rate limit hit by %s", who)
            warn = self._limiter.hit(self._warn_limit, "warn", env.channel, citizen.pseudonym)
            return [Reply(messages.RATE_LIMITED)] if warn else []
        incoming = dialogue.with_message_id(env.incoming, msg.id)
        if len(incoming.text) > self.settings.max_message_chars:
            return [Reply(messages.TOO_LONG.format(limit=self.settings.max_message_chars))]
        state = dict(citizen.state or {})
        intent = None
        if dialogue.needs_intent(state, incoming):
            nlu = self.services.parse(incoming.text)
            intent = Intent(nlu.intent, float(nlu.confidence))
            msg.intent, msg.confidence, msg.nlu_source = nlu.intent, float(nlu.confidence), nlu.source
        rt = dialogue.route(
            state,
            incoming,
            intent,
            min_confidence=self.settings.min_intent_confidence,
            claim_min_words=self.settings.claim_min_words,
        )
        facts = self._gather(s, rt, citizen, msg, state)
        new_state, replies = dialogue.respond(
            state, rt, facts, message_id=msg.id, new_session=secrets.token_hex(4)
        )
        if citizen.deleted_at is None:
            citizen.state = new_state
            s.add(citizen)
        log.info("message %s from %s: %s/%s", msg.id, who, rt.need.value, rt.say or intent and intent.name)
        return replies

    def _gather(
        self, s: Session, rt: Route, citizen: Citizen, msg: InboundMessage, state: dict[str, Any]
    ) -> Facts:
        """Look up (or do) what the route needs; everything else stays in the pure dialogue."""
        facts = Facts()
        if rt.need is Need.answer:
            facts.answer = self.services.answer(rt.text, session=s)
        elif rt.need is Need.match:
            result = self.services.match(rt.text, session=s)
            facts.decision = result.decision
            if result.decision == "auto" and result.verdict is not None:
                facts.candidates = [_view(result.verdict)]
            elif result.decision == "suggest":
                facts.candidates = [_view(c) for c in result.candidates]
            else:
                facts.decision = "none"
                claim = self.services.report(rt.text, session=s, citizen_id=citizen.id, message_id=msg.id)
                facts.ask_count = claim.ask_count
        elif rt.need is Need.report:
            source_msg = state.get("pending_message_id")
            if source_msg is None or s.get(InboundMessage, source_msg) is None:
                source_msg = msg.id
            claim = self.services.report(rt.text, session=s, citizen_id=citizen.id, message_id=source_msg)
            facts.ask_count = claim.ask_count
        elif rt.need is Need.verdict:
            verdict = s.get(Verdict, rt.arg)
            if verdict is not None and verdict.status == VerdictStatus.published:
                facts.candidates = [_view(verdict)]
        elif rt.need in (Need.subscribe, Need.unsubscribe):
            citizen.subscribed_digest = rt.need is Need.subscribe
            s.add(citizen)
        elif rt.need is Need.delete:
            d = citizens.delete_data(s, citizen, keep_message_id=msg.id)
            facts.deleted = (d.messages, d.reports, d.notifications)
        elif rt.need is Need.feedback:
            rated = s.get(InboundMessage, rt.arg)
            if rated is not None and rated.citizen_id == citizen.id:  # only one's own answers
                s.add(Feedback(message_id=rated.id, helpful=rt.say == "fb1"))
        return facts


def _view(v: Any) -> VerdictView:
    """A VerdictCandidate from matching, or a Verdict row."""
    return VerdictView(
        verdict_id=getattr(v, "verdict_id", None) or v.id,
        claim=v.claim,
        rating=v.rating,
        summary=v.summary or "",
        url=v.url,
        published_at=v.published_at,
    )


def session_from(session: Session) -> SessionFactory:
    """A factory that reuses one open session (tests, where it is rolled back at the end)."""
    from contextlib import contextmanager

    @contextmanager
    def factory() -> Iterator[Session]:
        yield session
        session.commit()

    return factory
