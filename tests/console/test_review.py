"""Four-eyes review: each version citizens receive is approved by someone who wrote none of it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from fact_team_console import corrections, review, workflow
from fact_team_console.workflow import VerdictForm, WorkflowError
from knowledge_base.db import migrate
from knowledge_base.models import (
    AuditLog,
    ClaimNote,
    Notification,
    StaffUser,
    Verdict,
    VerdictContributor,
    VerdictCorrection,
    VerdictText,
)
from tests.console.conftest import login, make_claim

HOAX = VerdictForm(
    claim="Air PDAM Kota Kupang dicampur racun tikus mulai besok",
    rating="HOAKS",
    summary="PDAM Kota Kupang membantah; uji laboratorium harian tidak menemukan zat berbahaya di air.",
    sources="https://kupangkota.go.id/berita/pdam-air-aman",
)
TRUE = VerdictForm(**{**vars(HOAX), "errors": [], "rating": "BENAR", "summary": HOAX.summary + " Ralat."})


def _kinds(session: Session, verdict_id: int) -> list[str]:
    rows = session.exec(select(Notification.kind).where(Notification.verdict_id == verdict_id)).all()
    return sorted(rows)


def _correct(
    session: Session, verdict: Verdict, user: StaffUser, form: VerdictForm, *, submit: bool
) -> VerdictCorrection:
    return corrections.save_correction(verdict.id or 0, form, user=user, session=session, submit=submit)


def _drafted(
    session: Session, staff: dict[str, StaffUser], text: str, *writers: str, asks: int = 1
) -> Verdict:
    """A ticket whose draft each writer saves in turn, unchanged; the last one submits it for review."""
    claim = make_claim(session, text, asks=asks)
    for name in writers[:-1]:
        workflow.save_draft(claim.id or 0, HOAX, user=staff[name], session=session, submit=False)
    verdict = workflow.save_draft(claim.id or 0, HOAX, user=staff[writers[-1]], session=session, submit=True)
    session.commit()
    return verdict


def _published(session: Session, staff: dict[str, StaffUser], writer: str, approver: str) -> Verdict:
    verdict = _drafted(session, staff, "Air PDAM Kupang ada racun tikus, jangan diminum", writer, asks=3)
    workflow.approve(verdict.id or 0, user=staff[approver], session=session)
    session.commit()
    return verdict


def test_a_draft_resubmitted_unchanged_by_another_is_not_approved_by_its_first_writer(
    session: Session, staff: dict[str, StaffUser]
) -> None:
    """(a): reviewer A drafts, checker B resubmits it unchanged; A may not approve A's own words."""
    verdict = _drafted(session, staff, "Gempa besar melanda Kupang malam ini", "tinjau1", "cek1", asks=2)
    assert verdict.status == "in_review" and verdict.author_id == staff["tinjau1"].id  # who started it
    assert review.writers(session, verdict.id or 0, 1) == {staff["tinjau1"].id, staff["cek1"].id}

    with pytest.raises(WorkflowError, match="peninjau lain"):
        workflow.approve(verdict.id or 0, user=staff["tinjau1"], session=session)
    assert verdict.status == "in_review" and _kinds(session, verdict.id or 0) == []
    assert workflow.approve(verdict.id or 0, user=staff["tinjau2"], session=session) == 2


def test_the_first_writer_sees_no_approve_button_and_the_post_is_refused(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    verdict = _drafted(session, staff, "Sekolah di Kupang libur sebulan karena wabah", "tinjau1", "cek1")
    ticket = f"/tickets/{verdict.claim_id}"
    token = login(client, "tinjau1")
    page = client.get(ticket).text
    assert 'id="approve"' not in page and "Anda ikut menulis vonis ini" in page
    assert "cek1, tinjau1" in page  # every writer named, not only the last to save
    r = client.post(f"/verdicts/{verdict.id}/approve", data={"csrf_token": token})
    assert r.status_code == 303 and "peninjau lain" in client.get(ticket).text
    session.expire_all()
    assert session.get(Verdict, verdict.id).status == "in_review"


def test_a_text_changed_after_the_reviewer_opened_it_is_not_approved_unseen(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    verdict = _drafted(session, staff, "Harga BBM di Kupang naik jadi Rp 20 ribu besok", "cek1")
    claim_id, ticket = verdict.claim_id or 0, f"/tickets/{verdict.claim_id}"
    token = login(client, "tinjau1")
    seen = re.search(r'name="seen" value="([^"]+)"', client.get(ticket).text)
    assert seen
    # Meanwhile another reviewer sends it back and the checker changes the rating.
    workflow.send_back(verdict.id or 0, "", user=staff["tinjau2"], session=session)
    workflow.save_draft(claim_id, TRUE, user=staff["cek1"], session=session, submit=True)
    session.commit()
    stale = client.post(f"/verdicts/{verdict.id}/approve", data={"csrf_token": token, "seen": seen.group(1)})
    assert stale.status_code == 303 and "berubah sejak Anda membukanya" in client.get(ticket).text
    session.expire_all()
    assert session.get(Verdict, verdict.id).status == "in_review"
    fresh = re.search(r'name="seen" value="([^"]+)"', client.get(ticket).text)
    assert fresh and fresh.group(1) != seen.group(1)
    client.post(f"/verdicts/{verdict.id}/approve", data={"csrf_token": token, "seen": fresh.group(1)})
    session.expire_all()
    assert session.get(Verdict, verdict.id).rating == "BENAR"
    assert _kinds(session, verdict.id or 0) == ["verdict"]


def test_a_reviewer_alone_cannot_correct_a_verdict_to_citizens(
    session: Session, staff: dict[str, StaffUser]
) -> None:
    """(b): a reviewer's HOAKS → BENAR correction waits for another person; citizens get nothing before."""
    verdict = _published(session, staff, writer="cek1", approver="tinjau2")
    texts = set(session.exec(select(VerdictText.text).where(VerdictText.verdict_id == verdict.id)))
    correction = _correct(session, verdict, staff["tinjau1"], TRUE, submit=True)
    session.commit()
    assert (verdict.version, verdict.rating, correction.status) == (1, "HOAKS", "in_review")
    assert _kinds(session, verdict.id or 0) == ["verdict"] * 3
    assert set(session.exec(select(VerdictText.text).where(VerdictText.verdict_id == verdict.id))) == texts

    with pytest.raises(WorkflowError, match="peninjau lain"):
        corrections.approve_correction(correction.id or 0, user=staff["tinjau1"], session=session)
    with pytest.raises(WorkflowError, match="Peran"):
        corrections.approve_correction(correction.id or 0, user=staff["cek2"], session=session)
    with pytest.raises(WorkflowError, match="sedang ditinjau"):  # no edit slipped in under review
        _correct(session, verdict, staff["tinjau1"], HOAX, submit=False)
    assert verdict.rating == "HOAKS"

    assert corrections.approve_correction(correction.id or 0, user=staff["tinjau2"], session=session) == 3
    session.commit()
    assert (verdict.version, verdict.rating, verdict.reviewer_id) == (2, "BENAR", staff["tinjau2"].id)
    assert correction.status == "published" and correction.reviewer_id == staff["tinjau2"].id
    assert _kinds(session, verdict.id or 0) == ["correction"] * 3 + ["verdict"] * 3
    keys = session.exec(select(Notification.dedupe_key).where(Notification.kind == "correction")).all()
    assert all(k.startswith(f"correction:{verdict.id}:v2:citizen:") for k in keys)
    summaries = session.exec(
        select(VerdictText.text).where(VerdictText.verdict_id == verdict.id, VerdictText.kind == "summary")
    ).all()
    assert summaries == [TRUE.summary]  # re-indexed only now
    actions = session.exec(select(AuditLog.action).order_by(col(AuditLog.id))).all()
    assert actions[-2:] == ["verdict.correction_submit", "verdict.correct"]


def test_the_writers_of_the_corrected_version_may_not_approve_the_correction(
    session: Session, staff: dict[str, StaffUser]
) -> None:
    """A correction carries the published words over: whoever wrote them is one of its writers too."""
    verdict = _published(session, staff, writer="tinjau1", approver="tinjau2")
    correction = _correct(session, verdict, staff["tinjau2"], TRUE, submit=True)
    assert review.writers(session, verdict.id or 0, 2) == {staff["tinjau1"].id, staff["tinjau2"].id}
    for name in ("tinjau1", "tinjau2"):
        with pytest.raises(WorkflowError, match="peninjau lain"):
            corrections.approve_correction(correction.id or 0, user=staff[name], session=session)
    assert corrections.approve_correction(correction.id or 0, user=staff["admin"], session=session) == 3


def test_a_correction_sent_back_is_edited_and_approved_by_someone_else(
    session: Session, staff: dict[str, StaffUser]
) -> None:
    verdict = _published(session, staff, writer="cek1", approver="tinjau1")
    correction = _correct(session, verdict, staff["cek2"], TRUE, submit=True)
    corrections.send_back_correction(
        correction.id or 0, "Sebutkan tanggal uji lab", user=staff["tinjau1"], session=session
    )
    assert correction.status == "draft"
    edited = VerdictForm(**{**vars(TRUE), "errors": [], "summary": TRUE.summary + " Uji lab 3 Maret."})
    again = _correct(session, verdict, staff["cek2"], edited, submit=True)
    assert again.id == correction.id and again.version == 2
    assert corrections.approve_correction(correction.id or 0, user=staff["tinjau1"], session=session) == 3
    assert verdict.summary.endswith("Uji lab 3 Maret.")
    notes = session.exec(select(ClaimNote.text).where(ClaimNote.claim_id == verdict.claim_id)).all()
    assert notes == ["Koreksi dikembalikan peninjau: Sebutkan tanggal uji lab"]


def test_the_correction_form_error_keeps_what_was_typed(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    verdict = _published(session, staff, writer="cek1", approver="tinjau1")
    token = login(client, "cek2")
    typed = {**vars(TRUE), "summary": "terlalu pendek", "csrf_token": token, "action": "submit"}
    typed.pop("errors")
    r = client.post(f"/verdicts/{verdict.id}/correct", data=typed)
    assert r.status_code == 422 and "minimal 20" in r.text and "terlalu pendek" in r.text
    assert session.exec(select(VerdictCorrection)).first() is None
    saved = client.post(
        f"/verdicts/{verdict.id}/correct", data={**typed, "summary": TRUE.summary, "action": "save"}
    )
    assert saved.status_code == 303
    page = client.get(f"/tickets/{verdict.claim_id}").text
    assert "Draf koreksi disimpan." in page and "Draf koreksi versi 2" in page and "Ralat." in page


@pytest.fixture
def fresh_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same backend, for a migration test."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    base = db_url.split("?")[0]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{base}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_the_upgrade_keeps_a_draft_in_review_from_its_writers(fresh_db_url: str) -> None:
    """Drafts saved before migration 0004 take their writers from the author and the audit log."""
    migrate(fresh_db_url, "0001")
    engine = sa.create_engine(fresh_db_url)
    with Session(engine) as s:
        a, b = (
            StaffUser(username="a", password_hash="x", role="reviewer"),
            StaffUser(username="b", password_hash="x"),
        )
        s.add_all([a, b])
        s.flush()
        verdict = Verdict(claim="x", rating="HOAKS", status="in_review", origin="console", author_id=b.id)
        s.add(verdict)
        s.flush()
        s.add_all(
            [
                AuditLog(user_id=a.id, action="verdict.draft", entity="verdict", entity_id=verdict.id),
                AuditLog(user_id=b.id, action="verdict.submit", entity="verdict", entity_id=verdict.id),
                AuditLog(user_id=a.id, action="note.add", entity="claim", entity_id=verdict.id),
            ]
        )
        s.commit()
        ids = (verdict.id, a.id, b.id)
    migrate(fresh_db_url)
    with Session(engine) as s:
        rows = s.exec(
            select(VerdictContributor.verdict_id, VerdictContributor.version, VerdictContributor.staff_id)
        )
        assert sorted(rows) == [(ids[0], 1, ids[1]), (ids[0], 1, ids[2])]
    engine.dispose()
