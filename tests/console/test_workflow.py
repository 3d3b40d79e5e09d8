"""The ticket workflow on SQLite and PostgreSQL: draft, review, four-eyes publish, correct, reject, merge."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, col, select

from fact_team_console import corrections, workflow
from fact_team_console.workflow import VerdictForm, WorkflowError
from knowledge_base.models import AuditLog, Claim, Notification, StaffUser, Verdict, VerdictText
from tests.console.conftest import make_claim

FORM = VerdictForm(
    claim="Pemkot Kupang membagikan bantuan tunai Rp 5 juta lewat tautan WhatsApp",
    rating="PENIPUAN",
    summary="Pemkot Kupang tidak pernah membagikan bantuan lewat tautan WhatsApp. Tautan itu mencuri data.",
    sources="https://kupangkota.go.id/berita/waspada-penipuan\nhttps://turnbackhoax.id/articles/1",
)


def _notifications(session: Session, **where: object) -> list[Notification]:
    query = select(Notification).order_by(col(Notification.id))
    for key, value in where.items():
        query = query.where(getattr(Notification, key) == value)
    return list(session.exec(query))


def test_draft_submit_and_approve_publishes_and_notifies_each_asker_once(
    session: Session, staff: dict[str, StaffUser]
) -> None:
    claim = make_claim(session, "Bantuan tunai Rp 5 juta dari Pemkot Kupang, klik tautan ini", asks=3)
    verdict = workflow.save_draft(claim.id or 0, FORM, user=staff["cek1"], session=session, submit=False)
    assert (verdict.status, claim.status) == ("draft", "investigating")
    workflow.save_draft(claim.id or 0, FORM, user=staff["cek1"], session=session, submit=True)
    assert (verdict.status, claim.status) == ("in_review", "in_review")
    assert verdict.sources == FORM.source_list() and verdict.origin == "console"

    sent = workflow.approve(verdict.id or 0, user=staff["tinjau1"], session=session)
    session.commit()

    assert sent == 3
    session.refresh(claim)
    assert claim.status == "published" and claim.closed_at is not None
    assert verdict.status == "published" and verdict.reviewer_id == staff["tinjau1"].id
    rows = _notifications(session, verdict_id=verdict.id)
    assert [n.kind for n in rows] == ["verdict"] * 3 and len({n.citizen_id for n in rows}) == 3
    texts = session.exec(select(VerdictText.kind).where(VerdictText.verdict_id == verdict.id)).all()
    assert {"claim", "summary", "message"} <= set(texts)
    actions = session.exec(select(AuditLog.action).order_by(col(AuditLog.id))).all()
    assert actions[-3:] == ["verdict.draft", "verdict.submit", "verdict.publish"]
    with pytest.raises(WorkflowError):
        workflow.approve(verdict.id or 0, user=staff["tinjau2"], session=session)  # already published


def test_only_another_reviewer_may_approve(session: Session, staff: dict[str, StaffUser]) -> None:
    claim = make_claim(session, "Gempa besar akan melanda Kupang malam ini menurut BMKG", asks=1)
    verdict = workflow.save_draft(claim.id or 0, FORM, user=staff["tinjau1"], session=session, submit=True)
    with pytest.raises(WorkflowError, match="peninjau lain"):
        workflow.approve(verdict.id or 0, user=staff["tinjau1"], session=session)
    with pytest.raises(WorkflowError, match="Peran"):
        workflow.approve(verdict.id or 0, user=staff["cek1"], session=session)
    with pytest.raises(WorkflowError, match="Peran"):
        workflow.approve(verdict.id or 0, user=staff["humas"], session=session)
    assert verdict.status == "in_review"
    assert workflow.approve(verdict.id or 0, user=staff["admin"], session=session) == 1


def test_send_back_returns_the_draft_with_a_note(session: Session, staff: dict[str, StaffUser]) -> None:
    claim = make_claim(session, "Sekolah di Kupang libur sebulan karena wabah", asks=1)
    verdict = workflow.save_draft(claim.id or 0, FORM, user=staff["cek1"], session=session, submit=True)
    with pytest.raises(WorkflowError, match="ditinjau"):
        workflow.save_draft(claim.id or 0, FORM, user=staff["cek2"], session=session, submit=False)
    workflow.send_back(
        verdict.id or 0, "Tambahkan sumber dari Dinas Pendidikan", user=staff["tinjau1"], session=session
    )
    assert verdict.status == "draft" and claim.status == "investigating"
    edited = VerdictForm(
        **{**vars(FORM), "errors": [], "summary": FORM.summary + " Sumber: Dinas Pendidikan."}
    )
    again = workflow.save_draft(claim.id or 0, edited, user=staff["cek1"], session=session, submit=True)
    assert again.id == verdict.id and "Dinas Pendidikan" in again.summary


def test_invalid_verdict_lists_every_problem_and_saves_nothing(
    session: Session, staff: dict[str, StaffUser]
) -> None:
    claim = make_claim(session, "Pesan berantai tentang beras plastik di pasar Oebobo", asks=1)
    bad = VerdictForm(
        claim=" ", rating="BOHONG", summary="pendek", sources="javascript:alert(1)", expires_on="2020-01-01"
    )
    with pytest.raises(WorkflowError) as err:
        workflow.save_draft(claim.id or 0, bad, user=staff["cek1"], session=session, submit=True)
    message = str(err.value)
    for part in ("Klaim wajib", "Pilih penilaian", "minimal 20", "URL", "masa depan"):
        assert part in message
    session.rollback()
    assert session.exec(select(Verdict).where(Verdict.claim_id == claim.id)).first() is None


def test_expiry_date_is_kept() -> None:
    form = VerdictForm(**{**vars(FORM), "errors": [], "expires_on": "2030-01-31"})
    clean = workflow.validate(form, today=date(2026, 1, 1))
    assert clean.expires_at is not None and clean.expires_at.date() == date(2030, 1, 31)


def test_correction_makes_a_new_version_and_notifies_the_same_citizens(
    session: Session, staff: dict[str, StaffUser]
) -> None:
    claim = make_claim(session, "Jembatan Liliba ditutup permanen mulai besok", asks=2)
    verdict = workflow.save_draft(claim.id or 0, FORM, user=staff["cek1"], session=session, submit=True)
    workflow.approve(verdict.id or 0, user=staff["tinjau1"], session=session)
    first = {n.citizen_id for n in _notifications(session, kind="verdict")}

    with pytest.raises(WorkflowError, match="Tidak ada perubahan"):
        corrections.save_correction(
            verdict.id or 0, FORM, user=staff["tinjau2"], session=session, submit=True
        )
    fixed = VerdictForm(**{**vars(FORM), "errors": [], "rating": "SALAH"})
    correction = corrections.save_correction(
        verdict.id or 0, fixed, user=staff["tinjau2"], session=session, submit=True
    )
    assert (verdict.version, verdict.rating) == (1, "PENIPUAN")  # nothing reaches citizens before review
    assert corrections.approve_correction(correction.id or 0, user=staff["tinjau1"], session=session) == 2
    assert verdict.version == 2 and verdict.rating == "SALAH" and verdict.reviewer_id == staff["tinjau1"].id
    assert {n.citizen_id for n in _notifications(session, kind="correction")} == first
    with pytest.raises(WorkflowError, match="Peran"):
        corrections.save_correction(verdict.id or 0, FORM, user=staff["humas"], session=session, submit=True)


def test_reject_needs_a_reason_and_tells_every_asker(session: Session, staff: dict[str, StaffUser]) -> None:
    claim = make_claim(session, "Menurut saya wali kota paling hebat se-NTT", asks=2)
    with pytest.raises(WorkflowError, match="alasan"):
        workflow.reject(claim.id or 0, "opini", user=staff["tinjau1"], session=session)
    with pytest.raises(WorkflowError, match="Peran"):
        workflow.reject(claim.id or 0, "Ini opini, bukan klaim fakta.", user=staff["cek1"], session=session)
    assert (
        workflow.reject(
            claim.id or 0, "Ini opini, bukan klaim fakta.", user=staff["tinjau1"], session=session
        )
        == 2
    )
    assert claim.status == "rejected" and claim.reject_reason == "Ini opini, bukan klaim fakta."
    assert [n.kind for n in _notifications(session, claim_id=claim.id)] == ["rejection", "rejection"]
    with pytest.raises(WorkflowError, match="ditutup"):
        workflow.assign(claim.id or 0, staff["cek1"].id, user=staff["cek1"], session=session)


def test_assign_moves_a_new_ticket_to_investigating(session: Session, staff: dict[str, StaffUser]) -> None:
    claim = make_claim(session, "Harga BBM di Kupang naik jadi Rp 20 ribu besok", asks=1)
    workflow.assign(claim.id or 0, staff["cek2"].id, user=staff["cek1"], session=session)
    assert claim.assignee_id == staff["cek2"].id and claim.status == "investigating"
    with pytest.raises(WorkflowError, match="ditugaskan"):
        workflow.assign(claim.id or 0, staff["humas"].id, user=staff["cek1"], session=session)
    workflow.assign(claim.id or 0, None, user=staff["cek1"], session=session)
    assert claim.assignee_id is None


def test_merge_moves_asks_to_the_ticket_asked_most(session: Session, staff: dict[str, StaffUser]) -> None:
    big = make_claim(session, "Air PDAM Kupang mengandung racun, jangan diminum", asks=3)
    small = make_claim(session, "air pdam kupang ada racun jgn minum", asks=1)
    target = workflow.merge([small.id or 0, big.id or 0], user=staff["cek1"], session=session)
    session.commit()
    assert target.id == big.id
    session.refresh(small)
    assert small.status == "merged" and small.merged_into_id == big.id
    assert session.get(Claim, big.id).ask_count == 4
    with pytest.raises(WorkflowError, match="dua tiket"):
        workflow.merge([big.id or 0], user=staff["cek1"], session=session)
