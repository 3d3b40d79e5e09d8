"""Ticket workflow: new → investigating → in review → published (or rejected).

Each step checks who may take it and in which state (`review`), changes the rows, and writes an audit
record; the caller commits. Publishing, rejecting and merging go through `knowledge_base`, which
indexes verdicts and fills the notification outbox: the console never talks to the bot. Corrections
of a published verdict go through the same review: `corrections`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from fact_team_console import audit
from fact_team_console.errors import WorkflowError, kb_call
from fact_team_console.inputs import clean
from fact_team_console.review import add_writers, check_approver, require_role
from knowledge_base import tickets, verdicts
from knowledge_base.models import (
    OPEN_CLAIM_STATUSES,
    Claim,
    ClaimNote,
    ClaimStatus,
    Rating,
    Role,
    StaffUser,
    Verdict,
    VerdictCorrection,
    VerdictStatus,
    utcnow,
)

log = logging.getLogger(__name__)
MAX_SUMMARY = 1000
MAX_CLAIM = 1000
MAX_NOTE = 4000
MAX_REASON = 500
MAX_SOURCES = 10


@dataclass
class VerdictForm:
    """The verdict form as typed, kept whole so an error never loses what was written."""

    claim: str = ""
    rating: str = ""
    summary: str = ""
    sources: str = ""
    expires_on: str = ""
    errors: list[str] = field(default_factory=list)

    def source_list(self) -> list[str]:
        return [line.strip() for line in self.sources.splitlines() if line.strip()]


@dataclass
class CleanVerdict:
    """A verdict's text as validated; its fields are the Verdict (and VerdictCorrection) columns."""

    claim: str
    rating: str
    summary: str
    sources: list[str]
    expires_at: datetime | None

    def columns(self) -> dict[str, Any]:
        return asdict(self)

    def same_as(self, row: Verdict | VerdictCorrection) -> bool:
        return all(getattr(row, name) == value for name, value in self.columns().items())


TEXT_FIELDS = tuple(f.name for f in fields(CleanVerdict))


def validate(form: VerdictForm, *, today: date | None = None) -> CleanVerdict:
    """Check every field at once and raise one WorkflowError listing all problems."""
    errors: list[str] = []
    claim = " ".join(clean(form.claim).split())
    summary = clean(form.summary).strip()
    if not claim:
        errors.append("Klaim wajib diisi.")
    elif len(claim) > MAX_CLAIM:
        errors.append(f"Klaim paling panjang {MAX_CLAIM} karakter.")
    if form.rating not in {r.value for r in Rating}:
        errors.append("Pilih penilaian dari daftar.")
    if len(summary) < 20:
        errors.append("Penjelasan untuk warga minimal 20 karakter.")
    elif len(summary) > MAX_SUMMARY:
        errors.append(f"Penjelasan paling panjang {MAX_SUMMARY} karakter.")
    sources = [clean(url) for url in form.source_list()]
    if not sources:
        errors.append("Sertakan minimal satu sumber (URL).")
    if len(sources) > MAX_SOURCES:
        errors.append(f"Paling banyak {MAX_SOURCES} sumber.")
    for url in sources:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 1000:
            errors.append(f"Sumber bukan URL http(s) yang sah: {url[:80]}")
    expires_at = None
    if form.expires_on.strip():
        try:
            day = date.fromisoformat(form.expires_on.strip())
        except ValueError:
            errors.append("Tanggal kedaluwarsa harus berformat YYYY-MM-DD.")
        else:
            if day <= (today or utcnow().date()):
                errors.append("Tanggal kedaluwarsa harus di masa depan.")
            expires_at = datetime.combine(day, time(23, 59), tzinfo=UTC)
    if errors:
        raise WorkflowError(" ".join(errors))
    return CleanVerdict(claim, form.rating, summary, sources, expires_at)


def _open_claim(session: Session, claim_id: int) -> Claim:
    claim = session.get(Claim, claim_id)
    if claim is None or claim.status == ClaimStatus.merged:
        raise WorkflowError("Tiket tidak ditemukan.")
    return claim


def current_verdict(session: Session, claim_id: int) -> Verdict | None:
    """The newest non-withdrawn verdict of a ticket (draft, in review or published)."""
    query = (
        select(Verdict)
        .where(Verdict.claim_id == claim_id, Verdict.status != VerdictStatus.withdrawn)
        .order_by(col(Verdict.id).desc())
    )
    return session.exec(query).first()


def assign(claim_id: int, assignee_id: int | None, *, user: StaffUser, session: Session) -> Claim:
    require_role(user, Role.checker, Role.reviewer)
    claim = _open_claim(session, claim_id)
    if claim.status not in OPEN_CLAIM_STATUSES:
        raise WorkflowError("Tiket sudah ditutup.")
    if assignee_id is not None:
        assignee = session.get(StaffUser, assignee_id)
        if assignee is None or not assignee.active or assignee.role == Role.comms:
            raise WorkflowError("Petugas itu tidak bisa ditugaskan.")
    before = claim.assignee_id
    claim.assignee_id = assignee_id
    if assignee_id is not None and claim.status == ClaimStatus.new:
        claim.status = ClaimStatus.investigating
    session.add(claim)
    audit.record(session, user.id, "claim.assign", "claim", claim_id, before=before, after=assignee_id)
    return claim


def set_topic(claim_id: int, topic: str, *, user: StaffUser, session: Session) -> Claim:
    require_role(user, Role.checker, Role.reviewer)
    claim = _open_claim(session, claim_id)
    new_topic = " ".join(clean(topic).split())[:100] or None
    audit.record(session, user.id, "claim.topic", "claim", claim_id, before=claim.topic, after=new_topic)
    claim.topic = new_topic
    session.add(claim)
    return claim


def add_note(claim_id: int, text: str, *, user: StaffUser, session: Session) -> ClaimNote:
    require_role(user, Role.checker, Role.reviewer)
    _open_claim(session, claim_id)
    text = clean(text).strip()
    if not text:
        raise WorkflowError("Catatan kosong.")
    if len(text) > MAX_NOTE:
        raise WorkflowError(f"Catatan paling panjang {MAX_NOTE} karakter.")
    note = ClaimNote(claim_id=claim_id, author_id=user.id, text=text)
    session.add(note)
    session.flush()
    audit.record(session, user.id, "note.add", "claim", claim_id, note_id=note.id)
    return note


def refuse_in_review(row: Verdict | VerdictCorrection | None, what: str) -> None:
    """A text under review is frozen: its reviewer sends it back before anyone edits it."""
    if row is not None and row.status == VerdictStatus.in_review:
        raise WorkflowError(f"{what} sedang ditinjau; minta peninjau mengembalikannya dulu.")


def write_text(
    session: Session,
    row: Verdict | VerdictCorrection,
    checked: CleanVerdict,
    user: StaffUser,
    *,
    submit: bool,
) -> None:
    """Put the validated text on a draft, set its review state, and record `user` as one of its writers."""
    for name, value in checked.columns().items():
        setattr(row, name, value)
    row.status = VerdictStatus.in_review if submit else VerdictStatus.draft
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    verdict_id = row.id if isinstance(row, Verdict) else row.verdict_id
    add_writers(session, verdict_id or 0, row.version, {user.id or 0})


def save_draft(
    claim_id: int, form: VerdictForm, *, user: StaffUser, session: Session, submit: bool
) -> Verdict:
    """Create or update the ticket's draft; `submit` also sends it for review."""
    require_role(user, Role.checker, Role.reviewer)
    claim = _open_claim(session, claim_id)
    if claim.status not in OPEN_CLAIM_STATUSES:
        raise WorkflowError("Tiket sudah ditutup; gunakan koreksi untuk vonis yang terbit.")
    checked = validate(form)
    verdict = current_verdict(session, claim_id)
    refuse_in_review(verdict, "Vonis")
    if verdict is None or verdict.status != VerdictStatus.draft:
        verdict = Verdict(
            claim_id=claim_id,
            origin="console",
            status=VerdictStatus.draft,
            author_id=user.id,
            **checked.columns(),
        )
    if submit:
        claim.status = ClaimStatus.in_review
    elif claim.status == ClaimStatus.new:
        claim.status = ClaimStatus.investigating
    session.add(claim)
    write_text(session, verdict, checked, user, submit=submit)
    action = "verdict.submit" if submit else "verdict.draft"
    audit.record(session, user.id, action, "verdict", verdict.id, claim_id=claim_id, rating=checked.rating)
    return verdict


def send_back(verdict_id: int, reason: str, *, user: StaffUser, session: Session) -> Verdict:
    """A reviewer returns a draft to its author with a note saying what to change."""
    require_role(user, Role.reviewer)
    verdict = session.get(Verdict, verdict_id)
    if verdict is None or verdict.status != VerdictStatus.in_review or verdict.claim_id is None:
        raise WorkflowError("Hanya vonis yang sedang ditinjau bisa dikembalikan.")
    verdict.status = VerdictStatus.draft
    claim = _open_claim(session, verdict.claim_id)
    claim.status = ClaimStatus.investigating
    session.add_all([verdict, claim])
    if clean(reason).strip():
        add_note(claim.id or 0, f"Dikembalikan peninjau: {reason.strip()}", user=user, session=session)
    audit.record(session, user.id, "verdict.send_back", "verdict", verdict_id, claim_id=claim.id)
    return verdict


def approve(verdict_id: int, *, user: StaffUser, session: Session, seen: str | None = None) -> int:
    """Four-eyes publication: a reviewer who wrote none of the draft approves it; returns notifications."""
    verdict = session.get(Verdict, verdict_id)
    if verdict is None or verdict.status != VerdictStatus.in_review:
        raise WorkflowError("Hanya vonis yang sedang ditinjau bisa disetujui.")
    check_approver(session, verdict, user, seen)
    verdict.reviewer_id = user.id
    session.add(verdict)
    session.flush()
    notified = kb_call(verdicts.publish_verdict, verdict_id, session=session)
    audit.record(
        session,
        user.id,
        "verdict.publish",
        "verdict",
        verdict_id,
        claim_id=verdict.claim_id,
        notifications=notified,
    )
    log.info(
        "verdict published verdict_id=%s claim_id=%s notifications=%s", verdict_id, verdict.claim_id, notified
    )
    return notified


def reject(claim_id: int, reason: str, *, user: StaffUser, session: Session) -> int:
    """Close a ticket as not checkable; the reason goes to every citizen who asked."""
    require_role(user, Role.reviewer)
    claim = _open_claim(session, claim_id)
    if claim.status not in OPEN_CLAIM_STATUSES:
        raise WorkflowError("Tiket sudah ditutup.")
    reason = " ".join(clean(reason).split())
    if len(reason) < 10:
        raise WorkflowError("Tuliskan alasan (minimal 10 karakter); warga akan menerimanya.")
    if len(reason) > MAX_REASON:
        raise WorkflowError(f"Alasan paling panjang {MAX_REASON} karakter.")
    notified = kb_call(tickets.reject_claim, claim_id, reason, session=session)
    audit.record(session, user.id, "claim.reject", "claim", claim_id, reason=reason, notifications=notified)
    return notified


def merge(claim_ids: list[int], *, user: StaffUser, session: Session) -> Claim:
    """Merge near-duplicates into the ticket with the most asks; asks and citizens follow."""
    require_role(user, Role.checker, Role.reviewer)
    ids = sorted(set(claim_ids))
    if len(ids) < 2:
        raise WorkflowError("Pilih minimal dua tiket untuk digabung.")
    claims = [_open_claim(session, i) for i in ids]
    if any(c.status not in OPEN_CLAIM_STATUSES for c in claims):
        raise WorkflowError("Hanya tiket yang masih terbuka bisa digabung.")
    target = max(claims, key=lambda c: (c.ask_count, -(c.id or 0)))
    sources = [c.id or 0 for c in claims if c.id != target.id]
    merged = kb_call(tickets.merge_claims, target.id or 0, sources, session=session)
    audit.record(session, user.id, "claim.merge", "claim", target.id, sources=sources)
    return merged
