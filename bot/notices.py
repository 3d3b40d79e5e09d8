"""What a notification says, rendered when it is sent, so a fix to a text applies to every queued row.

Verdicts, corrections and rejections come from `bot.messages`; digests and the city channel's posts
from `knowledge_base.digest_render`, the functions the console's preview uses, so a subscriber receives
exactly what the comms officer previewed.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot import messages
from bot.delivery import Notice
from knowledge_base import digest_render, digests
from knowledge_base.digest_render import DigestView, TelegramMessage
from knowledge_base.models import CitizenReport, Claim, Digest, DigestStatus, Notification, Verdict

CHANNEL_POSTS = frozenset({"digest_channel", "verdict_channel"})  # rows without a citizen
DIGEST_KINDS = frozenset({"digest"}) | CHANNEL_POSTS
# A published digest is frozen, so one batch's rows share its view: {digest id: view, None if unsendable}.
Views = dict[int, DigestView | None]


def render(session: Session, n: Notification, *, views: Views | None = None) -> Notice | None:
    """The row's message for every channel, or None when there is nothing to send."""
    if n.body:
        return Notice(n.body)
    if n.kind in ("verdict", "correction") and n.verdict_id is not None:
        v = session.get(Verdict, n.verdict_id)
        if v is not None:
            return Notice(messages.notification(n.kind, v.claim, v.rating, v.summary, v.url, v.published_at))
    if n.kind == "rejection" and n.claim_id is not None:
        claim = session.get(Claim, n.claim_id)
        if claim is not None:
            own = session.exec(  # quote the citizen's own words, never another citizen's
                select(CitizenReport.text).where(
                    col(CitizenReport.claim_id) == claim.id, col(CitizenReport.citizen_id) == n.citizen_id
                )
            ).first()
            return Notice(messages.rejection(own or "", claim.reject_reason or ""))
    if n.kind in ("digest", "digest_channel") and n.digest_id is not None:
        view = digest_view(session, n.digest_id, {} if views is None else views)
        if view is None:
            return None
        if n.kind == "digest_channel":
            return telegram_notice(digest_render.telegram(view, channel=True), link_preview=False)
        return _subscriber_notice(view)
    if n.kind == "verdict_channel" and n.verdict_id is not None:
        v = session.get(Verdict, n.verdict_id)
        if v is not None and v.is_servable():  # a verdict withdrawn before its post is not posted
            post = digest_render.verdict_post(v.id or 0, v.claim, v.rating, v.summary, v.published_at)
            return telegram_notice(post, link_preview=True)  # one link: its preview is the verdict card
    return None


def digest_view(session: Session, digest_id: int, views: Views) -> DigestView | None:
    """The published digest's view, built once per batch; None for a digest that is not published."""
    if digest_id not in views:
        digest = session.get(Digest, digest_id)
        published = digest is not None and digest.status == DigestStatus.published
        views[digest_id] = digests.view(digest, session=session) if digest and published else None
    return views[digest_id]


def telegram_notice(msg: TelegramMessage, *, link_preview: bool) -> Notice:
    keyboard = tuple(tuple(row) for row in msg.keyboard)
    return Notice(msg.text, keyboard=keyboard, link_preview=link_preview)


def _subscriber_notice(view: DigestView) -> Notice:
    """One message with the verdicts' buttons and "Berhenti langganan" on Telegram (links listed,
    previews off); on WhatsApp free text inside the 24-hour window, the approved template outside."""
    tg = telegram_notice(digest_render.telegram(view), link_preview=False)

    def whatsapp(inside_window: bool) -> digest_render.WhatsAppMessage:
        return digest_render.whatsapp(view, inside_window=inside_window)

    return Notice(tg.text, keyboard=tg.keyboard, link_preview=False, whatsapp=whatsapp)
