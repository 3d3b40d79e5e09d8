"""Atom feeds of published verdicts and of digests (feedgen), for readers and for other deployments.

The verdict feed is written so that our own ingester reads it as a `factchecker` source: each entry's
title carries the rating and the claim, its content the explanation, its link the verdict page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from feedgen.feed import FeedGenerator

from fact_team_console.claimreview import checker
from knowledge_base.digest_render import DigestView, plain_text, verdict_url
from knowledge_base.digest_settings import DigestSettings
from knowledge_base.models import Verdict, utcnow

FEED_TYPE = "application/atom+xml; charset=utf-8"


def _feed(settings: DigestSettings, path: str, title: str, subtitle: str, updated: datetime) -> FeedGenerator:
    base = settings.public_base_url
    fg = FeedGenerator()
    fg.id(f"{base}{path}")
    fg.title(title)
    fg.subtitle(subtitle)
    fg.author({"name": settings.team_name})
    fg.link(href=f"{base}{path}", rel="alternate", type="text/html")
    fg.link(href=f"{base}{path}/feed.xml", rel="self", type="application/atom+xml")
    fg.language("id")
    fg.updated(updated)
    return fg


def verdict_feed(verdicts: Sequence[Verdict], settings: DigestSettings) -> bytes:
    """The newest published, current verdicts, each with its rating, explanation and checker."""
    stamps = [v.updated_at or v.published_at for v in verdicts]
    fg = _feed(
        settings,
        "/cek-fakta",
        f"{settings.site_name}: hasil cek fakta",
        f"Kabar yang sudah diperiksa {settings.team_name} dan pemeriksa fakta tepercaya.",
        max((s for s in stamps if s), default=utcnow()),
    )
    for v in reversed(verdicts):  # feedgen prepends: add oldest first so the newest leads
        url = verdict_url(v.id or 0, settings)
        entry = fg.add_entry()
        entry.id(url)
        entry.title(f"[{v.rating}] {v.claim}")
        entry.link(href=url, rel="alternate", type="text/html")
        entry.summary(v.summary or v.claim)
        entry.content(f"{v.rating}: {v.claim}\n\n{v.summary}".strip(), type="text")
        entry.author({"name": checker(v).name})
        entry.category(term=v.rating, label=v.rating)
        when = v.published_at or v.created_at
        entry.published(when)
        entry.updated(v.updated_at if v.version > 1 and v.updated_at else when)
    return bytes(fg.atom_str(pretty=True))


def digest_feed(views: Sequence[DigestView], settings: DigestSettings) -> bytes:
    """Published digests, newest first, each as the same text subscribers receive (without footer)."""
    fg = _feed(
        settings,
        "/kabar",
        settings.title,
        f"Ringkasan berkala {settings.team_name}.",
        max((v.published_at for v in views if v.published_at), default=utcnow()),
    )
    for view in reversed(views):
        entry = fg.add_entry()
        entry.id(view.url)
        entry.title(("Koreksi: " if view.correction_of else "") + view.heading)
        entry.link(href=view.url, rel="alternate", type="text/html")
        entry.summary(view.intro or view.heading)
        entry.content(plain_text(view), type="text")
        entry.author({"name": settings.team_name})
        if view.published_at:
            entry.published(view.published_at)
            entry.updated(view.published_at)
    return bytes(fg.atom_str(pretty=True))
