"""Correcting a published verdict: drafted, reviewed by someone who wrote none of it, then published.

The published version keeps answering citizens while its correction is written (a `VerdictCorrection`
row). Only on approval does `knowledge_base.verdicts.correct_verdict` make it the next version:
re-indexed, and a `correction` notification queued to every citizen who asked.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, col, select

from fact_team_console import audit
from fact_team_console.errors import WorkflowError, kb_call
from fact_team_console.inputs import clean
from fact_team_console.review import add_writers, check_approver, require_role, writers
from fact_team_console.workflow import (
    TEXT_FIELDS,
    VerdictForm,
    add_note,
    refuse_in_review,
    validate,
    write_text,
)
from knowledge_base import verdicts
from knowledge_base.models import Role, StaffUser, Verdict, VerdictCorrection, VerdictStatus, utcnow

log = logging.getLogger(__name__)
OPEN = (VerdictStatus.draft, VerdictStatus.in_review)


def open_correction(session: Session, verdict_id: int) -> VerdictCorrection | None:
    """The correction of this verdict being written or reviewed, if any (there is at most one)."""
    query = (
        select(VerdictCorrection)
        .where(VerdictCorrection.verdict_id == verdict_id, col(VerdictCorrection.status).in_(OPEN))
        .order_by(col(VerdictCorrection.id).desc())
    )
    return session.exec(query).first()


def _published(session: Session, verdict_id: int) -> Verdict:
    verdict = session.get(Verdict, verdict_id)
    if verdict is None or verdict.status != VerdictStatus.published:
        raise WorkflowError("Hanya vonis yang sudah terbit bisa dikoreksi.")
    return verdict


def _in_review(session: Session, correction_id: int) -> VerdictCorrection:
    correction = session.get(VerdictCorrection, correction_id)
    if correction is None or correction.status != VerdictStatus.in_review:
        raise WorkflowError("Hanya koreksi yang sedang ditinjau bisa disetujui atau dikembalikan.")
    return correction


def save_correction(
    verdict_id: int, form: VerdictForm, *, user: StaffUser, session: Session, submit: bool
) -> VerdictCorrection:
    """Create or update the correction draft of a published verdict; `submit` sends it for review."""
    require_role(user, Role.checker, Role.reviewer)
    verdict = _published(session, verdict_id)
    correction = open_correction(session, verdict_id)
    refuse_in_review(correction, "Koreksi")
    checked = validate(form)
    if checked.same_as(verdict):
        raise WorkflowError("Tidak ada perubahan; koreksi tidak dikirim.")
    if correction is None:
        correction = VerdictCorrection(
            verdict_id=verdict_id, version=verdict.version + 1, author_id=user.id, **checked.columns()
        )
        # The correction starts from the published text: its writers' words carry over.
        add_writers(session, verdict_id, correction.version, writers(session, verdict_id, verdict.version))
    write_text(session, correction, checked, user, submit=submit)
    audit.record(
        session,
        user.id,
        "verdict.correction_submit" if submit else "verdict.correction_draft",
        "verdict",
        verdict_id,
        correction_id=correction.id,
        version=correction.version,
        rating=checked.rating,
    )
    return correction


def send_back_correction(
    correction_id: int, reason: str, *, user: StaffUser, session: Session
) -> VerdictCorrection:
    """A reviewer returns a correction to its writers, with a note on the ticket saying what to change."""
    require_role(user, Role.reviewer)
    correction = _in_review(session, correction_id)
    correction.status = VerdictStatus.draft
    session.add(correction)
    verdict = session.get(Verdict, correction.verdict_id)
    if verdict is not None and verdict.claim_id is not None and clean(reason).strip():
        add_note(
            verdict.claim_id, f"Koreksi dikembalikan peninjau: {reason.strip()}", user=user, session=session
        )
    audit.record(
        session,
        user.id,
        "verdict.correction_send_back",
        "verdict",
        correction.verdict_id,
        correction_id=correction_id,
    )
    return correction


def approve_correction(
    correction_id: int, *, user: StaffUser, session: Session, seen: str | None = None
) -> int:
    """Four-eyes: someone who wrote none of the correction publishes it; returns notifications queued."""
    correction = _in_review(session, correction_id)
    check_approver(session, correction, user, seen)
    verdict = _published(session, correction.verdict_id)
    if verdict.version + 1 != correction.version:
        raise WorkflowError("Vonis sudah berubah sejak koreksi ini ditulis; tulis koreksinya lagi.")
    before = {"rating": verdict.rating, "summary": verdict.summary, "version": verdict.version}
    text = {name: getattr(correction, name) for name in TEXT_FIELDS}
    notified = kb_call(
        verdicts.correct_verdict, verdict.id or 0, session=session, reviewer_id=user.id, **text
    )
    correction.status = VerdictStatus.published
    correction.reviewer_id = user.id
    correction.published_at = utcnow()
    session.add(correction)
    audit.record(
        session,
        user.id,
        "verdict.correct",
        "verdict",
        verdict.id,
        correction_id=correction_id,
        before=before,
        rating=verdict.rating,
        version=verdict.version,
        notifications=notified,
    )
    log.info(
        "correction published verdict_id=%s version=%s notifications=%s",
        verdict.id,
        verdict.version,
        notified,
    )
    return notified
