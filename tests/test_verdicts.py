"""Verdict import, publication, correction and rejection on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from knowledge_base.models import (
    Citizen,
    CitizenReport,
    Claim,
    ClaimStatus,
    Notification,
    Rating,
    Verdict,
    VerdictStatus,
    VerdictText,
)
from knowledge_base.ratings import parse_rating
from knowledge_base.tickets import reject_claim
from knowledge_base.verdict_import import ImportFileError, import_csv
from knowledge_base.verdicts import correct_verdict, publish_verdict

BROKEN_CSV = (
    "claim,rating,summary,url,published_at,source,extra\n"  # line 1
    "Air PDAM Kupang beracun,SALAH,Tidak ada laporan.,https://example.org/a,2026-01-05,Tim,x\n"  # 2 good
    ",SALAH,No claim here,https://example.org/b,2026-01-05,Tim,x\n"  # 3 missing claim
    "Listrik padam seminggu,BOHONG BESAR,?,https://example.org/c,2026-01-05,Tim,x\n"  # 4 unknown rating
    "Beras plastik di pasar,HOAKS,?,https://example.org/d,5 Januari 2026,Tim,x\n"  # 5 bad date
    "Vaksin berisi chip,SALAH,?,ftp//nowhere,2026-01-05,Tim,x\n"  # 6 bad URL
    '"Pesan berantai\nbantuan Rp 5 juta",PENIPUAN,"Tautan palsu, jangan diklik.",'
    "https://example.org/e,07/02/2026,Tim,x\n"  # 7-8 good, quoted newline, day-first date
    "Banjir di Oesapa karena bendungan jebol,[Disinformasi],,https://example.org/f,,,\n"  # 9 good, no date
    "Sekolah libur sebulan,KOMEDI,Satire,https://example.org/a,2026-01-05,Tim,x\n"  # 10 known URL
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "verdicts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_rows_are_reported_by_line_and_good_rows_kept(session: Session, tmp_path: Path) -> None:
    report = import_csv(write(tmp_path, BROKEN_CSV), session=session)
    assert report.added == 3
    assert report.already_known == 1
    assert [(e.line, e.message.split()[0]) for e in report.errors] == [
        (3, "missing"),
        (4, "unknown"),
        (5, "bad"),
        (6, "bad"),
    ]
    assert "BOHONG BESAR" in report.errors[1].message and "date" in report.errors[2].message
    rows = {v.url: v for v in session.exec(select(Verdict)).all()}
    assert set(rows) == {"https://example.org/a", "https://example.org/e", "https://example.org/f"}
    scam = rows["https://example.org/e"]
    assert scam.claim == "Pesan berantai bantuan Rp 5 juta"
    assert scam.rating == Rating.PENIPUAN and scam.status == VerdictStatus.published
    assert scam.published_at == datetime(2026, 2, 7, tzinfo=UTC)
    assert rows["https://example.org/f"].rating == Rating.HOAKS
    assert rows["https://example.org/f"].published_at is None
    kinds = session.exec(select(VerdictText.kind).where(VerdictText.verdict_id == scam.id)).all()
    assert sorted(kinds) == ["claim", "summary"]


def test_reimport_adds_nothing(session: Session, tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN_CSV)
    import_csv(path, session=session)
    again = import_csv(path, session=session)
    assert again.added == 0 and again.already_known == 4
    assert len(session.exec(select(Verdict)).all()) == 3


def test_missing_columns_or_file_is_a_clear_error(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="missing column.*rating"):
        import_csv(write(tmp_path, "claim,verdict\nx,SALAH\n"), session=session)
    with pytest.raises(ImportFileError, match="cannot read"):
        import_csv(tmp_path / "absent.csv", session=session)


def test_real_dev_csv_imports_whole_and_messages_only_on_request(session: Session, shared_data: Path) -> None:
    path = shared_data / "factchecks" / "turnbackhoax_dev.csv"
    report = import_csv(path, session=session)
    assert (report.added, report.errors) == (300, [])
    ratings = {r for r in session.exec(select(Verdict.rating)).all()}
    assert ratings <= {r.value for r in Rating} and {"SALAH", "PENIPUAN", "SATIRE"} <= ratings
    assert not session.exec(select(VerdictText).where(VerdictText.kind == "message")).first()
    # Re-importing with messages attaches nothing: the verdicts are known by URL already.
    assert import_csv(path, session=session, with_messages=True).already_known == 300


def test_with_messages_attaches_the_circulated_text(
    session: Session, shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / "factchecks" / "turnbackhoax_dev.csv").read_text(encoding="utf-8").splitlines()
    import csv as csvmod

    rows = list(csvmod.reader(lines))
    head = write(tmp_path, "\n".join(",".join(f'"{c}"' for c in r) for r in rows[:3]) + "\n")
    import_csv(head, session=session, with_messages=True)
    messages = session.exec(select(VerdictText.text).where(VerdictText.kind == "message")).all()
    assert len(messages) == 2 and messages[0].startswith(rows[1][6][:30])


@pytest.mark.parametrize(
    ("label", "rating"),
    [("SALAH", Rating.SALAH), ("[PENIPUAN]", Rating.PENIPUAN), ("Parodi", Rating.SATIRE),
     ("misinformasi", Rating.SALAH), ("Fitnah", Rating.HOAKS), ("partly-true", Rating.SEBAGIAN_BENAR)],
)  # fmt: skip
def test_site_labels_map_onto_the_fixed_scale(label: str, rating: Rating) -> None:
    assert parse_rating(label) == rating


# --------------------------------------------------------------------------- publication and the outbox


def ticket_with_askers(
    session: Session, askers: int, *, texts: list[str] | None = None
) -> tuple[Claim, list[int]]:
    claim = Claim(text="Air PDAM Kupang mengandung racun", text_hash="h", status=ClaimStatus.investigating)
    session.add(claim)
    session.flush()
    ids = []
    for n in range(askers):
        citizen = Citizen(channel="telegram", pseudonym=f"p{n}", address=f"10{n}")
        session.add(citizen)
        session.flush()
        ids.append(citizen.id or 0)
        text = (texts or [])[n] if texts and n < len(texts) else claim.text
        session.add(CitizenReport(claim_id=claim.id or 0, citizen_id=citizen.id, text=text))
    # One citizen asked twice: still one notification.
    session.add(CitizenReport(claim_id=claim.id or 0, citizen_id=ids[0], text="air pdam racun??"))
    claim.ask_count = askers + 1
    session.add(claim)
    session.flush()
    return claim, ids


def draft_for(session: Session, claim: Claim) -> Verdict:
    verdict = Verdict(
        claim="Air PDAM Kupang mengandung racun",
        rating=Rating.SALAH,
        summary="PDAM Kota Kupang memeriksa kualitas air setiap hari; tidak ada temuan racun.",
        status=VerdictStatus.in_review,
        origin="console",
        claim_id=claim.id,
    )
    session.add(verdict)
    session.flush()
    return verdict


def notifications(session: Session, kind: str) -> list[Notification]:
    return list(
        session.exec(select(Notification).where(Notification.kind == kind).order_by(col(Notification.id)))
    )


def test_publish_notifies_each_asker_once_and_indexes_their_texts(session: Session) -> None:
    claim, citizens = ticket_with_askers(session, 3, texts=["beta dapa pesan air PDAM ada racun", "", ""])
    verdict = draft_for(session, claim)
    assert publish_verdict(verdict.id or 0, session=session) == 3
    sent = notifications(session, "verdict")
    assert sorted(n.citizen_id or 0 for n in sent) == citizens
    assert {n.dedupe_key for n in sent} == {f"verdict:{verdict.id}:v1:citizen:{c}" for c in citizens}
    assert all(n.verdict_id == verdict.id and n.channel == "telegram" and n.status == "pending" for n in sent)
    session.refresh(claim)
    session.refresh(verdict)
    assert claim.status == ClaimStatus.published and claim.closed_at is not None
    assert verdict.status == VerdictStatus.published and verdict.published_at is not None
    texts = session.exec(
        select(VerdictText.kind, VerdictText.text).where(VerdictText.verdict_id == verdict.id)
    ).all()
    assert ("message", "beta dapa pesan air PDAM ada racun") in texts
    assert ("message", "air pdam racun??") in texts
    assert {k for k, _ in texts} == {"claim", "summary", "message"}
    # Publishing again (a retried request) adds nothing.
    assert publish_verdict(verdict.id or 0, session=session) == 0
    assert len(notifications(session, "verdict")) == 3


def test_deleted_citizens_are_not_notified(session: Session) -> None:
    claim, citizens = ticket_with_askers(session, 2)
    gone = session.get(Citizen, citizens[1])
    assert gone is not None
    gone.deleted_at = datetime.now(UTC)
    session.add(gone)
    verdict = draft_for(session, claim)
    assert publish_verdict(verdict.id or 0, session=session) == 1


def test_correction_bumps_version_and_notifies_the_same_citizens(session: Session) -> None:
    claim, citizens = ticket_with_askers(session, 2)
    verdict = draft_for(session, claim)
    publish_verdict(verdict.id or 0, session=session)
    added = correct_verdict(
        verdict.id or 0, session=session, rating="MENYESATKAN", summary="Koreksi: air aman."
    )
    assert added == 2
    session.refresh(verdict)
    assert (verdict.version, verdict.rating) == (2, Rating.MENYESATKAN)
    updates = notifications(session, "correction")
    assert sorted(n.citizen_id or 0 for n in updates) == citizens
    assert all(n.dedupe_key.startswith(f"correction:{verdict.id}:v2:") for n in updates)
    summaries = session.exec(
        select(VerdictText.text).where(VerdictText.verdict_id == verdict.id, VerdictText.kind == "summary")
    ).all()
    assert summaries == ["Koreksi: air aman."]
    # No change, no new version and no message.
    assert correct_verdict(verdict.id or 0, session=session, rating="MENYESATKAN") == 0
    with pytest.raises(ValueError, match="unknown rating"):
        correct_verdict(verdict.id or 0, session=session, rating="NGAWUR")
    with pytest.raises(ValueError, match="cannot correct"):
        correct_verdict(verdict.id or 0, session=session, status="draft")


def test_rejection_notifies_with_the_reason(session: Session) -> None:
    claim, citizens = ticket_with_askers(session, 2)
    assert reject_claim(claim.id or 0, "  Bukan klaim yang bisa  diperiksa. ", session=session) == 2
    session.refresh(claim)
    assert claim.status == ClaimStatus.rejected
    assert claim.reject_reason == "Bukan klaim yang bisa diperiksa."
    sent = notifications(session, "rejection")
    assert sorted(n.citizen_id or 0 for n in sent) == citizens and all(n.claim_id == claim.id for n in sent)
    assert reject_claim(claim.id or 0, "Bukan klaim yang bisa diperiksa.", session=session) == 0
    with pytest.raises(ValueError, match="reason"):
        reject_claim(claim.id or 0, " ", session=session)
