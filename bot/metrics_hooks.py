"""The bot's Prometheus metrics (defined in `knowledge_base.metrics`), moved from one line each in
`bot.core` and `bot.outbox`, so the message path stays readable and the labels stay bounded: channel,
intent name, decision, cause — never an id, an address or a message's text.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ParamSpec

import httpx
from telegram import error as tg

from bot.delivery import PermanentError, RetryLater, TransientError
from bot.dialogue import Need
from knowledge_base.metrics import (
    ANSWERS,
    DELIVERY_FAILURES,
    HANDLING_SECONDS,
    MATCH_DECISIONS,
    MESSAGES_IN,
    MESSAGES_OUT,
    NLU_BREAKER_OPEN,
)

if TYPE_CHECKING:
    from bot.core import Envelope, Plan, Turn
    from bot.whatsapp import StatusUpdate
    from knowledge_base.models import InboundMessage

log = logging.getLogger(__name__)
P = ParamSpec("P")

# Intent of each message between its handling and the delivery of its replies (same process, moments
# apart); bounded so that replies never delivered cannot make it grow.
_PENDING_MAX = 10_000
_intents: OrderedDict[int, str] = OrderedDict()
_lock = threading.Lock()


def _never_raises(func: Callable[P, None]) -> Callable[P, None]:
    """A metric must never turn a citizen's answer into an error: log and carry on."""

    @functools.wraps(func)
    def safe(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            log.exception("metrics hook %s failed", func.__name__)

    return safe


def intent_label(env: Envelope, plan: Plan) -> str:
    """The NLU intent when the message was classified, else what kind of action it was."""
    if plan.route is None:
        return "limited"  # rate-limited or too long: answered with a fixed reply
    if plan.nlu is not None:
        return plan.nlu.intent
    kind = env.incoming.kind
    if kind in ("button", "command"):
        return kind
    return "dialogue" if kind == "text" else "media"  # text the conversation's state explains


@_never_raises
def handled(env: Envelope, plan: Plan, msg: InboundMessage, parse: object) -> None:
    """A message was understood and its replies stored (`parse`: the NLU the core used)."""
    channel, label = env.channel, intent_label(env, plan)
    MESSAGES_IN.labels(channel, label).inc()
    if plan.route is not None and plan.route.need is Need.answer:
        ANSWERS.labels(str(plan.facts.answer is not None and plan.facts.answer.found).lower()).inc()
    if plan.route is not None and plan.route.need is Need.match and plan.facts.decision:
        MATCH_DECISIONS.labels(plan.facts.decision).inc()
    breaker = getattr(getattr(parse, "__self__", None), "breaker", None)  # nlu.client.NluClient's
    if breaker is not None:
        NLU_BREAKER_OPEN.set(0 if str(breaker.state) == "closed" else 1)  # open or half-open
    _observe(channel, msg, label)


@_never_raises
def failed(channel: str, msg: InboundMessage) -> None:
    """Processing a message raised; the citizen got the apology reply."""
    MESSAGES_IN.labels(channel, "error").inc()
    _observe(channel, msg, "error")


def _observe(channel: str, msg: InboundMessage, label: str) -> None:
    if msg.processed_at is not None and msg.received_at is not None:
        HANDLING_SECONDS.labels(channel).observe((msg.processed_at - msg.received_at).total_seconds())
    if msg.id is not None:
        with _lock:
            _intents[msg.id] = label
            while len(_intents) > _PENDING_MAX:
                _intents.popitem(last=False)


@contextmanager
def replies_delivery(channel: str, turn: Turn) -> Iterator[None]:
    """Around sending a turn's replies: counts them sent, or the failure by cause (and re-raises)."""
    with _lock:
        label = _intents.pop(turn.message_id or 0, "redelivery")
    try:
        yield
    except Exception as exc:
        DELIVERY_FAILURES.labels(channel, failure_cause(exc)).inc()
        raise
    MESSAGES_OUT.labels(channel, label).inc(len(turn.replies))


@contextmanager
def notification_delivery(channel: str) -> Iterator[None]:
    """Around one notification send: a failure is counted by cause (and re-raised for the outbox)."""
    try:
        yield
    except Exception as exc:
        DELIVERY_FAILURES.labels(channel, failure_cause(exc)).inc()
        raise


@_never_raises
def reported_statuses(channel: str, statuses: Iterable[StatusUpdate]) -> None:
    """Delivery statuses the platform reports later: a `failed` one is a failure no sender saw."""
    for status in statuses:
        if status.status == "failed":
            DELIVERY_FAILURES.labels(channel, "reported_failed").inc()


def failure_cause(exc: BaseException) -> str:
    """A short, bounded label for why a delivery failed (the adapters chain the channel's own error)."""
    root = exc.__cause__ or exc
    if isinstance(exc, RetryLater) or isinstance(root, tg.RetryAfter):
        return "rate_limited"
    if isinstance(root, tg.Forbidden):
        return "blocked"
    if isinstance(root, tg.BadRequest):
        return "bad_request"
    if isinstance(root, tg.InvalidToken):
        return "invalid_token"
    if isinstance(root, tg.TimedOut | httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(root, tg.NetworkError | httpx.HTTPError | OSError):
        return "network"
    if isinstance(exc, TransientError):
        return "server_error"  # WhatsApp 5xx
    if isinstance(exc, PermanentError):
        return "refused"  # WhatsApp 4xx
    return "other"
