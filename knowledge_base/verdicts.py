"""The verdict lifecycle: publishing and correcting a verdict, its index texts, and the outbox it fills.

Functions flush but never commit: the caller (console request, CLI command) owns the transaction, so
a verdict, its index texts and its notifications land together or not at all. Notification dedupe keys
make every enqueue idempotent: publishing twice never messages a citizen twice. Who may publish or
correct (four-eyes review) is the console's rule: `fact_team_console.workflow`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from knowledge_base import near_duplicate
from knowledge_base.digests import on_verdict_published
from knowledge_base.models import (
    Citizen,
    CitizenReport,
    Claim,
    ClaimStatus,
    Notification,
    Verdict,
    VerdictStatus,
    VerdictText,
    utcnow,
)
from knowledge_base.ratings import parse_rating

log = logging.getLogger(__name__)

CORRECTABLE = frozenset({"claim", "rating", "summary", "url", "sources", "expires_at", "reviewer_id"})


def add_text(session: Session, verdict_id: int, kind: str, text: str) -> VerdictText | None:
    """Index one more text of a verdict (claim, summary or circulated message); duplicates are skipped.

    The embedding is left empty: the matcher embeds new texts on its next sync, in whichever process.
    """
    text = (text or "").strip()
    if not near_duplicate.canonical(text):
        return None
    digest = near_duplicate.text_hash(text)
    exists = session.exec(
        select(VerdictText.id).where(VerdictText.verdict_id == verdict_id, VerdictText.text_hash == digest)
    ).first()
    if exists is not None:
        return None
    row = VerdictText(
        verdict_id=verdict_id, kind=kind, text=text, text_hash=digest, simhash=near_duplicate.simhash(text)
    )
    session.add(row)
    return row


# --------------------------------------------------------------------------- askers and the outbox


def _askers(session: Session, claim_id: int | None) -> list[Citizen]:
    """Citizens who asked about this ticket (or a ticket merged into it), once each, not deleted."""
    if claim_id is None:
        return []
    claim_ids = [claim_id, *session.exec(select(Claim.id).where(Claim.merged_into_id == claim_id)).all()]
    asked = select(CitizenReport.citizen_id).where(col(CitizenReport.claim_id).in_(claim_ids))
    rows = session.exec(
        select(Citizen)
        .where(col(Citizen.id).in_(asked), col(Citizen.deleted_at).is_(None))
        .order_by(col(Citizen.id))
    ).all()
    return list(rows)


def _enqueue(session: Session, citizens: Iterable[Citizen], key_prefix: str, **fields: Any) -> int:
    """One pending notification per citizen unless its dedupe key exists; returns how many were added."""
    added = 0
    for citizen in citizens:
        key = f"{key_prefix}:citizen:{citizen.id}"
        if session.exec(select(Notification.id).where(Notification.dedupe_key == key)).first() is not None:
            continue
        try:
            with session.begin_nested():  # another process may enqueue the same key at the same moment
                session.add(
                    Notification(dedupe_key=key, citizen_id=citizen.id, channel=citizen.channel, **fields)
                )
        except IntegrityError:
            continue
        added += 1
    return added


def _tell_askers(session: Session, verdict: Verdict, kind: str) -> int:
    """One `kind` notification per asker of this verdict version (dedupe key `kind:id:vN:citizen:C`)."""
    return _enqueue(
        session,
        _askers(session, verdict.claim_id),
        f"{kind}:{verdict.id}:v{verdict.version}",
        kind=kind,
        verdict_id=verdict.id,
        claim_id=verdict.claim_id,
    )


def _index_circulated_texts(session: Session, verdict: Verdict) -> None:
    """Attach every text citizens sent about the ticket, so the next forward of it matches this verdict."""
    if verdict.claim_id is None:
        return
    claim_ids = [
        verdict.claim_id,
        *session.exec(select(Claim.id).where(Claim.merged_into_id == verdict.claim_id)),
    ]
    for claim in session.exec(select(Claim).where(col(Claim.id).in_(claim_ids))).all():
        add_text(session, verdict.id or 0, "message", claim.text)
    reports = session.exec(select(CitizenReport.text).where(col(CitizenReport.claim_id).in_(claim_ids))).all()
    for text in reports:
        add_text(session, verdict.id or 0, "message", text or "")


def publish_verdict(verdict_id: int, *, session: Session) -> int:
    """Publish: index claim, summary and every ticket message, close the ticket, notify each asker once.

    Returns the number of notifications enqueued (0 on a repeated publish).
    """
    verdict = session.get(Verdict, verdict_id)
    if verdict is None:
        raise LookupError(f"verdict {verdict_id} not found")
    now = utcnow()
    verdict.status = VerdictStatus.published
    verdict.published_at = verdict.published_at or now
    verdict.updated_at = now
    session.add(verdict)
    add_text(session, verdict_id, "claim", verdict.claim)
    add_text(session, verdict_id, "summary", verdict.summary)
    _index_circulated_texts(session, verdict)
    if verdict.claim_id is not None:
        claim = session.get(Claim, verdict.claim_id)
        if claim is not None and claim.status != ClaimStatus.merged:
            claim.status = ClaimStatus.published
            claim.closed_at = claim.closed_at or now
            session.add(claim)
    added = _tell_askers(session, verdict, "verdict")
    on_verdict_published(verdict, session=session)  # the channel post, when configured
    session.flush()
    log.info("verdict %s v%s published, %d notifications", verdict_id, verdict.version, added)
    return added


def correct_verdict(verdict_id: int, *, session: Session, **changes: Any) -> int:
    """Apply a correction as a new version and tell the citizens who asked; returns notifications added.

    Changed claim or summary texts replace the old ones in the index (the old wording may be wrong).
    """
    unknown = set(changes) - CORRECTABLE
    if unknown:
        raise ValueError(f"cannot correct field(s) {', '.join(sorted(unknown))}")
    verdict = session.get(Verdict, verdict_id)
    if verdict is None:
        raise LookupError(f"verdict {verdict_id} not found")
    if "rating" in changes:
        changes["rating"] = parse_rating(str(changes["rating"])).value
    if "claim" in changes and not " ".join(str(changes["claim"] or "").split()):
        raise ValueError("missing claim")
    changed = {k: v for k, v in changes.items() if getattr(verdict, k) != v}
    if not changed:
        return 0
    for name, value in changed.items():
        setattr(verdict, name, value)
    verdict.version += 1
    verdict.updated_at = utcnow()
    session.add(verdict)
    for kind in ("claim", "summary"):
        if kind in changed:
            for old in session.exec(
                select(VerdictText).where(VerdictText.verdict_id == verdict_id, VerdictText.kind == kind)
            ).all():
                session.delete(old)
            session.flush()
            add_text(session, verdict_id, kind, getattr(verdict, kind))
    added = _tell_askers(session, verdict, "correction") if verdict.status == VerdictStatus.published else 0
    session.flush()
    log.info(
        "verdict %s corrected to v%s (%s), %d notifications",
        verdict_id,
        verdict.version,
        ", ".join(sorted(changed)),
        added,
    )
    return added
