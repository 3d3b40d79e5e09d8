"""The conversation itself, as pure steps: `route(state, incoming, intent)` says what to look up,
`respond(state, route, facts)` turns the looked-up facts into replies and the next state.

Nothing here touches the database, the network or a clock, so every branch is unit-testable and
the same core serves Telegram, WhatsApp, the terminal and the "Coba bot" page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot import messages
from knowledge_base.digest_render import UNSUBSCRIBE_PREFIX
from knowledge_base.near_duplicate import word_count
from knowledge_base.settings import get_settings as get_kb_settings

if TYPE_CHECKING:  # types only: importing them would load the knowledge base's search stack
    from knowledge_base.answer import Answer
    from knowledge_base.matching import VerdictCandidate

COMMANDS = {"start", "help", "cek", "tanya", "langganan", "berhenti", "hapusdata", "menu"}
MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class Incoming:
    """One citizen action, already translated from the channel's payload."""

    text: str = ""
    command: str | None = None
    button: str | None = None
    media: str | None = None
    forwarded: bool = False

    @property
    def kind(self) -> str:
        if self.button is not None:
            return "button"
        if self.command:
            return "command"
        return "text" if self.text.strip() or not self.media else self.media


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "buttons": [[b.label, b.data] for b in self.buttons]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reply:
        return cls(d["text"], tuple(Button(label, data) for label, data in d.get("buttons", [])))


class Need(StrEnum):
    """What the core must look up (or do) before `respond` can answer."""

    nothing = "nothing"
    answer = "answer"  # knowledge_base.answer.answer_question(text)
    match = "match"  # knowledge_base.matching.match_claim(text), then report_claim when "none"
    report = "report"  # knowledge_base.tickets.report_claim(text) directly
    verdict = "verdict"  # one verdict by id
    subscribe = "subscribe"
    unsubscribe = "unsubscribe"
    delete = "delete"
    feedback = "feedback"


@dataclass(frozen=True)
class Route:
    need: Need
    say: str = ""  # which canned reply, for routes that need nothing
    text: str = ""
    arg: int | None = None


@dataclass
class Facts:
    """What the core found; each field is filled only for the route that needs it."""

    answer: Answer | None = None
    decision: str | None = None  # "auto" | "suggest" | "none"
    candidates: list[VerdictCandidate] = field(default_factory=list)
    ask_count: int = 0
    deleted: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Intent:
    name: str
    confidence: float


def button_data(session: str, action: str, arg: int | str = "") -> str:
    """Callback data carries the conversation session so a button from an old menu is detected."""
    return f"{session}|{action}|{arg}"


def parse_button(data: str) -> tuple[str, str, str]:
    session, _, rest = data.partition("|")
    action, _, arg = rest.partition("|")
    return session, action, arg


def parse_command(text: str) -> tuple[str | None, str]:
    """'/cek@KabasBot isi kabar' -> ('cek', 'isi kabar'); unknown commands are kept as 'help'."""
    if not text.startswith("/"):
        return None, text
    head, _, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    return (name if name in COMMANDS else "help"), rest.strip()


def needs_intent(state: dict[str, Any], incoming: Incoming) -> bool:
    """NLU is only consulted for free text that no command, button, mode or forward explains."""
    return (
        incoming.kind == "text"
        and bool(incoming.text.strip())
        and not incoming.forwarded
        and state.get("mode") not in ("await_claim", "await_question")
    )


def route(
    state: dict[str, Any],
    incoming: Incoming,
    intent: Intent | None,
    *,
    min_confidence: float = 0.5,
    claim_min_words: int | None = None,
) -> Route:
    """Decide what the citizen wants from the message, the conversation mode and the NLU intent.

    `claim_min_words`: words from which unrecognised text is a forwarded claim (default: the
    knowledge base's `forward_min_words`).
    """
    if incoming.button is not None:
        return _route_button(state, incoming.button)
    if incoming.command:
        return _route_command(incoming.command, incoming.text)
    text = incoming.text.strip()
    if not text:
        return Route(Need.nothing, say=f"media:{incoming.media}" if incoming.media else "empty")
    mode = state.get("mode")
    if incoming.forwarded or mode == "await_claim":
        return _route_claim(text)
    if mode == "await_question":
        return Route(Need.answer, text=text)
    name = intent.name if intent and intent.confidence >= min_confidence else "nlu_fallback"
    by_intent = {
        "greet": Route(Need.nothing, say="greet"),
        "help": Route(Need.nothing, say="menu"),
        "thanks": Route(Need.nothing, say="thanks"),
        "goodbye": Route(Need.nothing, say="goodbye"),
        "ask_info": Route(Need.answer, text=text),
        "check_claim": _route_claim(text),
        "subscribe_digest": Route(Need.subscribe),
        "unsubscribe_digest": Route(Need.unsubscribe),
        "delete_my_data": Route(Need.nothing, say="confirm_delete"),
        "out_of_scope": Route(Need.nothing, say="out_of_scope"),
    }
    if name in by_intent:
        return by_intent[name]
    # Not understood: a long text is most likely a forwarded chain message; a short one a question.
    if claim_min_words is None:
        claim_min_words = get_kb_settings().forward_min_words
    if word_count(text) >= claim_min_words:
        return Route(Need.match, text=text)
    return Route(Need.answer, text=text, say="fallback")


def _route_claim(text: str) -> Route:
    """A claim of one or two words cannot be checked; asking for the full sentence beats a junk ticket."""
    if word_count(text) < get_kb_settings().check_min_words:
        return Route(Need.nothing, say="claim_too_short")
    return Route(Need.match, text=text)


def _route_command(command: str, rest: str) -> Route:
    if command == "cek":
        return _route_claim(rest) if rest else Route(Need.nothing, say="prompt_claim")
    if command == "tanya":
        return Route(Need.answer, text=rest) if rest else Route(Need.nothing, say="prompt_question")
    simple = {
        "start": Route(Need.nothing, say="start"),
        "help": Route(Need.nothing, say="menu"),
        "menu": Route(Need.nothing, say="menu"),
        "langganan": Route(Need.subscribe),
        "berhenti": Route(Need.unsubscribe),
        "hapusdata": Route(Need.nothing, say="confirm_delete"),
    }
    return simple[command]


def _route_button(state: dict[str, Any], data: str) -> Route:
    if data.startswith(UNSUBSCRIBE_PREFIX):  # a digest's "Berhenti langganan": valid however old
        return Route(Need.unsubscribe)
    session, action, arg = parse_button(data)
    if not session or session != state.get("session"):
        return Route(Need.nothing, say="stale")
    if action == "pick" and arg.isdigit() and int(arg) in state.get("suggestions", []):
        return Route(Need.verdict, arg=int(arg))
    if action == "report" and state.get("pending_claim"):
        return Route(Need.report, text=state["pending_claim"])
    if action in ("fb1", "fb0") and arg.isdigit():
        return Route(Need.feedback, arg=int(arg), say=action)
    if action == "delete" and state.get("mode") == "confirm_delete":
        return Route(Need.delete)
    if action == "cancel":
        return Route(Need.nothing, say="cancel")
    if action == "menu_cek":
        return Route(Need.nothing, say="prompt_claim")
    if action == "menu_tanya":
        return Route(Need.nothing, say="prompt_question")
    if action == "menu_langganan":
        return Route(Need.subscribe)
    return Route(Need.nothing, say="stale")


def respond(
    state: dict[str, Any], rt: Route, facts: Facts, *, message_id: int | None, new_session: str
) -> tuple[dict[str, Any], list[Reply]]:
    """Replies and the next state for a looked-up route. `new_session` is used only on /start."""
    session = state.get("session") or new_session
    base = {"session": session}  # every turn clears one-shot modes unless it sets one again
    feedback = _feedback_buttons(session, message_id)
    menu = _menu_buttons(session)

    if rt.need is Need.answer:
        ans = facts.answer
        if ans is not None and ans.found:
            return base, [Reply(messages.answer(ans.text, ans.citations), feedback)]
        if rt.say == "fallback":
            return base, [Reply(messages.NOT_UNDERSTOOD, menu)]
        return base, [Reply(messages.NO_INFO, menu)]

    if rt.need is Need.match:
        if facts.decision == "auto" and facts.candidates:
            return base, [Reply(_verdict_text(facts.candidates[0]), feedback)]
        if facts.decision == "suggest" and facts.candidates:
            shown = facts.candidates[:MAX_SUGGESTIONS]
            lines = [messages.suggestion_label(i, c.claim, c.rating) for i, c in enumerate(shown, 1)]
            buttons = tuple(
                Button(str(i), button_data(session, "pick", c.verdict_id)) for i, c in enumerate(shown, 1)
            )
            buttons += (Button(messages.SUGGEST_NONE, button_data(session, "report")),)
            new_state = {
                **base,
                "mode": "suggest",
                "suggestions": [c.verdict_id for c in shown],
                "pending_claim": rt.text,
                "pending_message_id": message_id,
            }
            return new_state, [Reply(messages.SUGGEST_INTRO + "\n\n" + "\n".join(lines), buttons)]
        return base, [Reply(messages.ticket(facts.ask_count))]

    if rt.need is Need.report:
        return base, [Reply(messages.ticket(facts.ask_count))]
    if rt.need is Need.verdict:  # the list stays valid: the citizen may look at another one
        if facts.candidates:
            return {**state, "session": session}, [Reply(_verdict_text(facts.candidates[0]), feedback)]
        return base, [Reply(messages.VERDICT_NOT_CURRENT)]  # withdrawn or expired since it was suggested
    if rt.need is Need.subscribe:
        return base, [Reply(messages.SUBSCRIBED)]
    if rt.need is Need.unsubscribe:
        return base, [Reply(messages.UNSUBSCRIBED)]
    if rt.need is Need.delete:
        counts = facts.deleted or (0, 0, 0)
        return {"session": new_session}, [Reply(messages.deleted(*counts))]
    if rt.need is Need.feedback:
        return {**state, "session": session}, [Reply(messages.FEEDBACK_THANKS)]
    return _say(state, rt.say, session, new_session, menu)


def _say(
    state: dict[str, Any], say: str, session: str, new_session: str, menu: tuple[Button, ...]
) -> tuple[dict[str, Any], list[Reply]]:
    base = {"session": session}
    if say == "start":
        return {"session": new_session}, [
            Reply(messages.GREETING + "\n\n" + messages.MENU, _menu_buttons(new_session))
        ]
    if say == "greet":
        return base, [Reply(messages.GREETING, menu)]
    if say == "menu":
        return base, [Reply(messages.MENU, menu)]
    if say == "prompt_claim":
        return {**base, "mode": "await_claim"}, [Reply(messages.PROMPT_CLAIM)]
    if say == "prompt_question":
        return {**base, "mode": "await_question"}, [Reply(messages.PROMPT_QUESTION)]
    if say == "claim_too_short":
        return {**base, "mode": "await_claim"}, [Reply(messages.CLAIM_TOO_SHORT)]
    if say == "confirm_delete":
        buttons = (
            Button(messages.DELETE_YES, button_data(session, "delete")),
            Button(messages.DELETE_NO, button_data(session, "cancel")),
        )
        return {**base, "mode": "confirm_delete"}, [Reply(messages.CONFIRM_DELETE, buttons)]
    if say == "stale":
        return {**state, "session": session}, [Reply(messages.STALE_BUTTON)]
    if say.startswith("media:"):
        return {**state, "session": session}, [Reply(messages.MEDIA.get(say[6:], messages.MEDIA_OTHER))]
    fixed = {
        "thanks": messages.THANKS,
        "goodbye": messages.GOODBYE,
        "out_of_scope": messages.OUT_OF_SCOPE,
        "cancel": messages.CANCELLED,
        "empty": messages.EMPTY_TEXT,
    }
    return base, [Reply(fixed.get(say, messages.NOT_UNDERSTOOD), menu if say == "out_of_scope" else ())]


def _verdict_text(v: VerdictCandidate) -> str:
    return messages.verdict(v.claim, v.rating, v.summary, v.url, v.published_at)


def _feedback_buttons(session: str, message_id: int | None) -> tuple[Button, ...]:
    if message_id is None:
        return ()
    return (
        Button(messages.FEEDBACK_YES, button_data(session, "fb1", message_id)),
        Button(messages.FEEDBACK_NO, button_data(session, "fb0", message_id)),
    )


def _menu_buttons(session: str) -> tuple[Button, ...]:
    return (
        Button(messages.MENU_CHECK, button_data(session, "menu_cek")),
        Button(messages.MENU_ASK, button_data(session, "menu_tanya")),
        Button(messages.MENU_SUBSCRIBE, button_data(session, "menu_langganan")),
    )
