"""How a digest reads on Telegram, on WhatsApp, on the web and in feeds: one text for every consumer.

The console's preview and the bot's notifier both call these functions, so what an officer previews
is what a subscriber receives. Texts are plain (no Markdown/HTML): whatever a verdict says is shown
verbatim on every channel. `DigestView` is built by `knowledge_base.digests.view`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from knowledge_base.dates import MONTHS, WITA, format_date
from knowledge_base.digest_settings import DigestSettings, get_digest_settings

TELEGRAM_LIMIT = 4096  # sendMessage text, in characters
WHATSAPP_TEXT_LIMIT = 4096
TEMPLATE_PARAM_LIMIT = 200  # Meta caps the whole body at 1024 characters
UNSUBSCRIBE_LABEL = "Berhenti langganan"
# Callback data of the Telegram button and payload of the WhatsApp quick reply: "digest:unsub:<id>".
UNSUBSCRIBE_PREFIX = "digest:unsub:"
UNSUBSCRIBE_HINT = "Berhenti langganan: kirim /berhenti"
DEFAULT_INTRO = "Halo! Ini kabar yang sudah diperiksa {team} pada {period}."
DEFAULT_OUTRO = "Ragu dengan sebuah kabar? Teruskan ke bot ini, kami bantu periksa. Salam kabas hoaks!"


# --------------------------------------------------------------------------- links and short texts


def verdict_url(verdict_id: int, settings: DigestSettings | None = None) -> str:
    return f"{(settings or get_digest_settings()).public_base_url}/cek-fakta/{verdict_id}"


def digest_url(digest_id: int, settings: DigestSettings | None = None) -> str:
    return f"{(settings or get_digest_settings()).public_base_url}/kabar/{digest_id}"


def short_link(verdict_id: int, settings: DigestSettings | None = None) -> str:
    """The link printed on a card: host and `/c/<id>`, no scheme (it redirects to the verdict page)."""
    base = urlsplit((settings or get_digest_settings()).public_base_url)
    return f"{base.netloc}{base.path.rstrip('/')}/c/{verdict_id}"


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters, cut at a word with an ellipsis."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.-–—")
    return (cut or text[: limit - 1]) + "…"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")


def one_line(summary: str, limit: int = 160) -> str:
    """The explanation's first sentence (or its start), short enough for one line in a chat."""
    text = " ".join((summary or "").split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    return shorten(first, limit)


def period_label(start: datetime, end: datetime) -> str:
    """'3–9 Maret 2026' for the half-open period [start, end) in Kupang time."""
    first = start.astimezone(WITA).date()
    last = (end - timedelta(microseconds=1)).astimezone(WITA).date()
    if last < first:
        last = first
    if first == last:
        return format_date(start)

    def day(d: date, *, month: bool = True, year: bool = True) -> str:
        return " ".join(
            [str(d.day)] + ([MONTHS[d.month - 1]] if month else []) + ([str(d.year)] if year else [])
        )

    if (first.year, first.month) == (last.year, last.month):
        return f"{day(first, month=False, year=False)}–{day(last)}"
    return f"{day(first, year=first.year != last.year)} – {day(last)}"


# --------------------------------------------------------------------------- the view


@dataclass(frozen=True)
class DigestEntry:
    number: int
    verdict_id: int
    rating: str
    claim: str
    line: str
    url: str
    checked_by: str | None  # an imported fact-checker's name; None for the city's own team
    asks: int = 0
    updated: bool = False  # the verdict was corrected after this digest was published


@dataclass(frozen=True)
class CorrectionRef:
    digest_id: int
    title: str
    url: str


@dataclass(frozen=True)
class DigestView:
    """Everything a rendering needs and nothing personal (no staff names, no citizens)."""

    id: int
    status: str
    title: str
    period: str
    intro: str
    outro: str
    entries: list[DigestEntry]
    url: str
    published_at: datetime | None
    period_start: datetime
    period_end: datetime
    correction_of: CorrectionRef | None = None
    correction_note: str = ""
    corrected_by: list[CorrectionRef] = field(default_factory=list)

    @property
    def heading(self) -> str:
        return f"{self.title}, {self.period}"


# --------------------------------------------------------------------------- plain text (all channels)


def _entry_block(e: DigestEntry, claim_limit: int, line_limit: int) -> str:
    head = f"{e.number}. {e.rating}: {shorten(e.claim, claim_limit)}"
    line = shorten(e.line, line_limit)
    if e.checked_by:
        line = f"{line} (diperiksa {e.checked_by})" if line else f"Diperiksa {e.checked_by}"
    return "\n".join(part for part in (head, line, e.url) if part)


def _compose(view: DigestView, footer: list[str], limit: int) -> tuple[str, int]:
    """The digest as one plain text of at most `limit` characters, and how many entries it shows.

    Long texts are shortened first, then the last entries give way to a pointer to the web page
    (which always has them all).
    """

    def build(claim_limit: int, line_limit: int, shown: int) -> str:
        parts = [f"{view.title.upper()}\n{view.period}"]
        if view.correction_of is not None:
            note = f": {view.correction_note.strip()}" if view.correction_note.strip() else ""
            parts.append(f"KOREKSI atas {view.correction_of.title}{note}")
        if view.intro.strip():
            parts.append(view.intro.strip())
        parts += [_entry_block(e, claim_limit, line_limit) for e in view.entries[:shown]]
        hidden = len(view.entries) - shown
        if hidden:
            parts.append(f"…dan {hidden} kabar lain: {view.url}")
        if not view.entries:
            parts.append("Belum ada kabar yang diperiksa pada periode ini.")
        if view.outro.strip():
            parts.append(view.outro.strip())
        parts.append("\n".join([f"Semua kabar: {view.url}", *footer]))
        return "\n\n".join(parts)

    for claim_limit, line_limit in ((220, 200), (140, 120), (90, 0)):
        text = build(claim_limit, line_limit, len(view.entries))
        if len(text) <= limit:
            return text, len(view.entries)
    for shown in range(len(view.entries) - 1, -1, -1):
        text = build(90, 0, shown)
        if len(text) <= limit:
            return text, shown
    return build(90, 0, 0)[:limit], 0


def plain_text(view: DigestView) -> str:
    """The digest as text for feeds and the command line (no unsubscribe line, no length cap)."""
    return _compose(view, [], 1_000_000)[0]


# --------------------------------------------------------------------------- Telegram


@dataclass(frozen=True)
class Button:
    label: str
    url: str | None = None
    data: str | None = None  # callback data (≤ 64 bytes)


@dataclass(frozen=True)
class TelegramMessage:
    text: str
    keyboard: list[list[Button]]

    def reply_markup(self) -> dict[str, Any]:
        """The Bot API `reply_markup` JSON (InlineKeyboardMarkup)."""
        return {
            "inline_keyboard": [
                [
                    {"text": b.label, "url": b.url} if b.url else {"text": b.label, "callback_data": b.data}
                    for b in row
                ]
                for row in self.keyboard
            ]
        }


def unsubscribe_data(digest_id: int) -> str:
    return f"{UNSUBSCRIBE_PREFIX}{digest_id}"


def telegram(view: DigestView, *, channel: bool = False) -> TelegramMessage:
    """One message for a subscriber (or, with `channel`, for the city's channel: no unsubscribe).

    Buttons: one per verdict page (two per row, numbered like the text), the web page, and for
    subscribers "Berhenti langganan" (callback data `digest:unsub:<id>`).
    """
    text, shown = _compose(view, [] if channel else [UNSUBSCRIBE_HINT], TELEGRAM_LIMIT)
    verdict_buttons = [Button(f"{e.number}. {e.rating}", url=e.url) for e in view.entries[:shown]]
    keyboard = [verdict_buttons[i : i + 2] for i in range(0, len(verdict_buttons), 2)]
    keyboard.append([Button("Baca di web", url=view.url)])
    if not channel:
        keyboard.append([Button(UNSUBSCRIBE_LABEL, data=unsubscribe_data(view.id))])
    return TelegramMessage(text, keyboard)


# --------------------------------------------------------------------------- WhatsApp


@dataclass(frozen=True)
class WhatsAppMessage:
    """Free text inside the 24-hour customer-service window, else the approved template."""

    kind: str  # "text" | "template"
    text: str  # what the citizen reads (the template's body with its parameters filled in)
    template: str | None = None
    language: str | None = None
    params: list[str] = field(default_factory=list)
    quick_reply_payload: str | None = None

    def graph_body(self) -> dict[str, Any]:
        """The Cloud API message body (the sender adds `messaging_product`, `recipient_type`, `to`)."""
        if self.kind == "text":
            return {"type": "text", "text": {"body": self.text, "preview_url": False}}
        components: list[dict[str, Any]] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in self.params]}
        ]
        if self.quick_reply_payload:
            components.append(
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": self.quick_reply_payload}],
                }
            )
        return {
            "type": "template",
            "template": {
                "name": self.template,
                "language": {"code": self.language},
                "components": components,
            },
        }


def template_param(text: str) -> str:
    """Meta refuses parameters with newlines, tabs, more than four spaces in a row, or nothing."""
    return shorten(re.sub(r"\s+", " ", text or ""), TEMPLATE_PARAM_LIMIT) or "-"


def _template_values(view: DigestView) -> dict[str, Callable[[], str]]:
    top = view.entries[0] if view.entries else None
    return {
        "title": lambda: view.title,
        "period": lambda: view.period,
        "count": lambda: str(len(view.entries)),
        "top": lambda: f"{top.rating} – {top.claim}" if top else "-",
        "intro": lambda: view.intro,
        "link": lambda: view.url,
    }


def whatsapp(
    view: DigestView, *, inside_window: bool, settings: DigestSettings | None = None
) -> WhatsAppMessage:
    settings = settings or get_digest_settings()
    if inside_window:
        return WhatsAppMessage("text", _compose(view, [UNSUBSCRIBE_HINT], WHATSAPP_TEXT_LIMIT)[0])
    values = _template_values(view)
    params = [template_param(values[name]()) for name in settings.whatsapp_template_params]
    body = re.sub(
        r"\{\{(\d+)\}\}",
        lambda m: params[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(params) else m.group(0),
        settings.whatsapp_template_body,
    )
    return WhatsAppMessage(
        "template",
        body,
        template=settings.whatsapp_template,
        language=settings.whatsapp_template_language,
        params=params,
        quick_reply_payload=unsubscribe_data(view.id) if settings.whatsapp_unsubscribe_button else None,
    )


# --------------------------------------------------------------------------- a verdict on the channel


def verdict_post(
    verdict_id: int, claim: str, rating: str, summary: str, published_at: datetime | None
) -> TelegramMessage:
    """A newly published verdict as posted to the city's channel (TELEGRAM_CHANNEL_POST_VERDICTS)."""
    url = verdict_url(verdict_id)
    text = "\n\n".join(
        part
        for part in (
            f"CEK FAKTA: {rating}",
            f"Kabar: {shorten(claim, 600)}",
            shorten(summary, 2000),
            f"Diperiksa {format_date(published_at)}\n{url}",
        )
        if part
    )
    return TelegramMessage(text, [[Button("Baca selengkapnya", url=url)]])
