"""`kabashoax digest draft|publish|list`: the comms office's digests from a shell (or a cron job).

Heavy imports stay inside the commands, so `kabashoax --help` starts fast.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlmodel import Session

    from knowledge_base.models import Digest

digest_app = typer.Typer(
    help="Digests of published verdicts for subscribers (Kabar Cek Fakta).", no_args_is_help=True
)


def _since(value: str | None) -> datetime | None:
    """A date (Kupang midnight) or an ISO datetime; naive datetimes are read as Kupang time."""
    from knowledge_base.dates import WITA

    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: --since must be YYYY-MM-DD or an ISO datetime, got {value!r}", err=True)
        raise typer.Exit(2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=WITA)


def _as_dict(digest: Digest, session: Session) -> dict[str, Any]:
    from knowledge_base import digests

    view = digests.view(digest, session=session)
    return {
        "id": view.id,
        "status": view.status,
        "automatic": digest.auto_key is not None,
        "period": view.period,
        "period_start": view.period_start.isoformat(),
        "period_end": view.period_end.isoformat(),
        "url": view.url,
        "intro": view.intro,
        "outro": view.outro,
        "correction_of": view.correction_of.digest_id if view.correction_of else None,
        "items": [
            {
                "verdict_id": e.verdict_id,
                "rating": e.rating,
                "claim": e.claim,
                "line": e.line,
                "url": e.url,
                "asks": e.asks,
                "checked_by": e.checked_by,
            }
            for e in view.entries
        ],
    }


@digest_app.command("draft")
def digest_draft(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start of the period (YYYY-MM-DD, Kupang time) [default: 7 days ago]"),
    ] = None,
    weekly: Annotated[
        bool,
        typer.Option("--weekly", help="The scheduler's automatic draft of the current week (idempotent)"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the draft as JSON")] = False,
) -> None:
    """Draft a digest from the verdicts published since DATE until now, most asked first."""
    from knowledge_base import digests
    from knowledge_base.db import session_scope
    from knowledge_base.models import Digest, utcnow

    now = utcnow()
    start = _since(since)
    try:
        with session_scope() as session:
            if weekly:
                made = digests.ensure_weekly_draft(now, session=session)
                if made is None:
                    typer.echo("error: the automatic draft is off (DIGEST_AUTO_DRAFT=false)", err=True)
                    raise typer.Exit(1)
                digest = session.get(Digest, made.digest_id)
            else:
                begin, end = (start, now) if start else digests.default_period(now)
                digest = digests.create_draft(begin, end, session=session, actor_id=None, via="cli")
            assert digest is not None
            data = _as_dict(digest, session)
    except digests.DigestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    typer.echo(f"digest {data['id']} ({data['status']}) {data['period']}: {len(data['items'])} verdicts")
    for n, item in enumerate(data["items"], start=1):
        typer.echo(f"  {n:>2}. [{item['rating']}] {item['claim'][:90]}  ({item['asks']} asks)")
    typer.echo(
        f"review and publish in the console: /digests/{data['id']}  or: kabashoax digest publish {data['id']}"
    )


@digest_app.command("publish")
def digest_publish(
    digest_id: Annotated[int, typer.Argument(help="The draft's id (see `digest list`)")],
) -> None:
    """Publish a draft: frozen from now on, one delivery queued per reachable subscriber."""
    from knowledge_base import digests
    from knowledge_base.db import session_scope

    try:
        with session_scope() as session:
            report = digests.publish(digest_id, session=session, actor_id=None, via="cli")
    except digests.DigestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if report.already_published:
        typer.echo(f"digest {digest_id} was already published; nothing queued")
        return
    channels = ", ".join(f"{c} {n}" for c, n in report.queued.items())
    channel = "; channel post queued" if report.channel_post else ""
    typer.echo(f"digest {digest_id} published: {report.total} subscribers queued ({channels}){channel}")


@digest_app.command("list")
def digest_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one digest per line")] = False,
) -> None:
    """Drafts and published digests with their delivery counts, and the subscribers per channel."""
    from knowledge_base import digest_render, digests
    from knowledge_base.db import session_scope

    with session_scope() as session:
        rows = digests.list_digests(session=session)
        ids = [d.id or 0 for d in rows]
        items = digests.item_counts(ids, session=session)
        counts = digests.delivery_counts(ids, session=session)
        subscribers = digests.subscriber_counts(session=session)
    for d in rows:
        c = counts[d.id or 0]
        record = {
            "id": d.id,
            "status": d.status,
            "automatic": d.auto_key is not None,
            "period": digest_render.period_label(d.period_start, d.period_end),
            "items": items.get(d.id or 0, 0),
            "published_at": d.published_at.isoformat() if d.published_at else None,
            "queued": c.queued,
            "sent": c.sent,
            "delivered": c.delivered,
            "failed": c.failed,
        }
        if as_json:
            typer.echo(json.dumps(record, ensure_ascii=False))
            continue
        auto = " auto" if record["automatic"] else ""
        typer.echo(
            f"{d.id:>4}  {d.status:<9}{auto:<5} {record['period']:<30} {record['items']:>2} verdicts  "
            f"queued {c.queued}  sent {c.sent}  delivered {c.delivered}  failed {c.failed}"
        )
    if not as_json:
        typer.echo("subscribers: " + ", ".join(f"{ch} {n}" for ch, n in subscribers.items()))


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `kabashoax` app."""
    app.add_typer(digest_app, name="digest")
