"""Tickets: many citizens, one claim, one ticket; merging; evidence for the fact team."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from knowledge_base.models import Citizen, CitizenReport, Claim, ClaimNote, ClaimStatus, Notification, Verdict
from knowledge_base.tickets import evidence_for, merge_claims, report_claim
from knowledge_base.verdicts import publish_verdict

WATER = (
    "Info dari teman di Dinas Kesehatan: mulai besok air PDAM Kota Kupang dicampur racun tikus, jangan "
    "diminum sampai tanggal 20 Maret. Sebarkan ke keluarga dan grup RT!"
)
JOB_A = (
    "Lowongan kerja Indomaret Kupang 2026 untuk lulusan SMA, gaji 4 juta per bulan, daftar lewat tautan "
    "resmi di bawah ini sebelum kuota penuh ya."
)
JOB_B = JOB_A.replace("Indomaret", "Hypermart")


def citizen(session: Session, n: int) -> int:
    row = Citizen(channel="whatsapp", pseudonym=f"c{n}", address=f"62812000{n}")
    session.add(row)
    session.flush()
    return row.id or 0


def test_forwards_of_one_claim_join_one_open_ticket(session: Session) -> None:
    first = report_claim(WATER, session=session, citizen_id=citizen(session, 1), message_id=None)
    exact = report_claim(
        "Diteruskan: " + WATER.lower(), session=session, citizen_id=citizen(session, 2), message_id=None
    )
    near = report_claim(
        WATER + " Benar kah??", session=session, citizen_id=citizen(session, 3), message_id=None
    )
    assert first.id == exact.id == near.id
    assert near.ask_count == 3 and near.status == ClaimStatus.new
    reports = session.exec(select(CitizenReport).where(CitizenReport.claim_id == first.id)).all()
    assert len(reports) == 3 and reports[1].text is not None and reports[1].text.startswith("Diteruskan")


def test_the_same_claim_in_other_words_joins_the_ticket(session: Session) -> None:
    first = report_claim(
        "Benarkah air PDAM Kota Kupang dicampur racun tikus mulai besok?", session=session, citizen_id=None,
        message_id=None,
    )  # fmt: skip
    other = report_claim(
        "apakah benar air PDAM Kota Kupang besok dicampuri racun tikus", session=session, citizen_id=None,
        message_id=None,
    )  # fmt: skip
    assert other.id == first.id and other.ask_count == 2


def test_different_claims_and_look_alike_scams_get_their_own_tickets(session: Session) -> None:
    water = report_claim(WATER, session=session, citizen_id=None, message_id=None)
    job_a = report_claim(JOB_A, session=session, citizen_id=None, message_id=None)
    job_b = report_claim(JOB_B, session=session, citizen_id=None, message_id=None)
    assert len({water.id, job_a.id, job_b.id}) == 3


def test_closed_tickets_are_not_joined(session: Session) -> None:
    first = report_claim(WATER, session=session, citizen_id=None, message_id=None)
    first.status = ClaimStatus.rejected
    session.add(first)
    again = report_claim(WATER, session=session, citizen_id=None, message_id=None)
    assert again.id != first.id and again.ask_count == 1


def test_empty_claim_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="text"):
        report_claim(" 🙏 ", session=session, citizen_id=None, message_id=None)


def test_merge_moves_reports_and_citizens_then_publishing_notifies_all(session: Session) -> None:
    a1, a2, b1 = citizen(session, 1), citizen(session, 2), citizen(session, 3)
    target = report_claim(JOB_A, session=session, citizen_id=a1, message_id=None)
    report_claim(JOB_A, session=session, citizen_id=a2, message_id=None)
    source = report_claim(JOB_B, session=session, citizen_id=b1, message_id=None)
    session.add(ClaimNote(claim_id=source.id or 0, text="cek situs resmi"))
    session.flush()

    merged = merge_claims(target.id or 0, [source.id or 0], session=session)
    assert merged.id == target.id and merged.ask_count == 3
    session.refresh(source)
    assert source.status == ClaimStatus.merged and source.merged_into_id == target.id
    askers = session.exec(select(CitizenReport.citizen_id).where(CitizenReport.claim_id == target.id)).all()
    assert sorted(a or 0 for a in askers) == sorted([a1, a2, b1])
    assert session.exec(select(ClaimNote).where(ClaimNote.claim_id == target.id)).first() is not None

    verdict = Verdict(
        claim="Lowongan kerja lewat tautan", rating="PENIPUAN", status="in_review", claim_id=target.id
    )
    session.add(verdict)
    session.flush()
    assert publish_verdict(verdict.id or 0, session=session) == 3
    notified = session.exec(
        select(Notification.citizen_id).where(Notification.verdict_id == verdict.id)
    ).all()
    assert sorted(n or 0 for n in notified) == sorted([a1, a2, b1])


def test_merge_refuses_nonsense(session: Session) -> None:
    claim = report_claim(WATER, session=session, citizen_id=None, message_id=None)
    with pytest.raises(ValueError, match="nothing to merge"):
        merge_claims(claim.id or 0, [claim.id or 0], session=session)
    with pytest.raises(LookupError):
        merge_claims(claim.id or 0, [10**9], session=session)


def test_evidence_lists_verdicts_that_may_already_answer(session: Session) -> None:
    verdict = Verdict(
        claim="Air PDAM Kota Kupang dicampur racun tikus",
        rating="SALAH",
        summary="PDAM memeriksa air setiap hari; tidak ada racun.",
        status="draft",
    )
    session.add(verdict)
    session.flush()
    publish_verdict(verdict.id or 0, session=session)
    claim = report_claim(WATER, session=session, citizen_id=None, message_id=None)
    passages, candidates = evidence_for(claim.id or 0, session=session)
    assert passages == []  # no feed has been ingested in this database
    assert candidates and candidates[0].verdict_id == verdict.id
    open_ids = session.exec(select(Claim.id).where(col(Claim.status) == ClaimStatus.new)).all()
    assert claim.id in open_ids
