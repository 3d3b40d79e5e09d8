"""The console pages through HTTP: queue, ticket page, verdict flow, dashboard, audit, users."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from knowledge_base.models import (
    AuditLog,
    Citizen,
    Claim,
    Notification,
    StaffUser,
    Verdict,
    VerdictCorrection,
    utcnow,
)
from tests.console.conftest import login, make_claim

XSS = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
VERDICT = {
    "claim": "Pemkot Kupang bagi bantuan tunai Rp 5 juta lewat tautan",
    "rating": "PENIPUAN",
    "summary": "Pemkot Kupang tidak membagikan bantuan lewat tautan. Tautan itu mencuri data pribadi.",
    "sources": "https://kupangkota.go.id/berita/waspada",
    "expires_on": "",
}


def test_queue_sorts_by_asks_and_filters(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    few = make_claim(session, "Listrik padam total di Kupang selama seminggu", asks=1)
    many = make_claim(session, "Air PDAM Kupang tercemar racun", asks=5, topic="kesehatan")
    done = make_claim(session, "Sudah terbit: jembatan runtuh", asks=9, status="published")
    login(client, "cek1")
    page = client.get("/").text
    assert page.index(f"/tickets/{many.id}") < page.index(f"/tickets/{few.id}")
    assert f"/tickets/{done.id}" not in page  # published tickets leave the open queue
    oldest = client.get("/", params={"sort": "oldest"}).text
    assert oldest.index(f"/tickets/{few.id}") < oldest.index(f"/tickets/{many.id}")
    assert f"/tickets/{done.id}" in client.get("/", params={"status": "published"}).text
    found = client.get("/", params={"q": "PDAM"}).text
    assert f"/tickets/{many.id}" in found and f"/tickets/{few.id}" not in found
    topical = client.get("/", params={"topic": "kesehatan"}).text
    assert f"/tickets/{many.id}" in topical and f"/tickets/{few.id}" not in topical
    bad = client.get("/", params={"status": "nonsense"})
    assert bad.status_code == 200 and "unknown status" in bad.text


def test_bad_queue_filters_are_reset_on_the_page_and_refused_by_the_api(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    water = make_claim(session, "Air PDAM Kupang tercemar racun", asks=2)
    power = make_claim(session, "Listrik padam total di Kupang selama seminggu", asks=1)
    login(client, "cek1")
    for params in (
        {"sort": "sideways"},
        {"page": "0"},
        {"page": "x"},
        {"assignee": "abc"},
        {"assignee": "²"},
        {"topic": "t" * 101},
        {"q": "x" * 201},
        {"status": "nonsense"},
    ):
        page = client.get("/", params=params)
        assert page.status_code == 200, params
        assert "Filter tidak sah diabaikan" in page.text and f"/tickets/{water.id}" in page.text, params
        assert client.get("/api/tickets", params=params).status_code == 422, params
    kept = client.get("/", params={"q": "PDAM", "sort": "sideways"}).text  # the valid part still applies
    assert f"/tickets/{water.id}" in kept and f"/tickets/{power.id}" not in kept
    detail = client.get("/api/tickets", params={"status": "nonsense"}).json()["detail"]
    assert "unknown status" in detail[0]["msg"]
    assert client.get("/api/tickets", params={"status": "all", "assignee": "none"}).json()["total"] == 2


def test_queue_filter_by_assignee_and_htmx_partial(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    mine = make_claim(session, "Beras plastik beredar di pasar Kasih Naikoten", asks=2)
    other = make_claim(session, "Sekolah libur sebulan karena wabah", asks=1)
    token = login(client, "cek1")
    assert (
        client.post(f"/tickets/{mine.id}/assign", data={"assignee": "me", "csrf_token": token}).status_code
        == 303
    )
    uid = staff["cek1"].id
    page = client.get("/", params={"assignee": str(uid)}).text
    assert f"/tickets/{mine.id}" in page and f"/tickets/{other.id}" not in page
    unassigned = client.get("/", params={"assignee": "none"}).text
    assert f"/tickets/{other.id}" in unassigned and f"/tickets/{mine.id}" not in unassigned
    partial = client.get("/", headers={"HX-Request": "true", "HX-Target": "queue-rows"})
    assert "<table" in partial.text and "<html" not in partial.text


def test_ticket_page_escapes_citizen_text_and_hides_addresses(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, XSS, asks=2)
    login(client, "humas")
    page = client.get(f"/tickets/{claim.id}").text
    assert "<script>document.title" not in page and "<img src=x" not in page
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in page
    addresses = [c.address for c in session.exec(select(Citizen)) if c.address]
    assert addresses and not any(a in page for a in addresses)
    assert re.search(r"warga-[0-9a-f]{4}", page)
    api = client.get(f"/api/tickets/{claim.id}").json()
    assert api["messages"][0]["text"] == XSS  # JSON carries text as data, never as markup
    assert not any(a in json.dumps(api) for a in addresses)


def test_verdict_form_error_keeps_what_was_typed(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Bantuan tunai Rp 5 juta dari Pemkot", asks=1)
    token = login(client, "cek1")
    typed = {**VERDICT, "summary": "terlalu pendek", "csrf_token": token, "action": "submit"}
    r = client.post(f"/tickets/{claim.id}/verdict", data=typed)
    assert r.status_code == 422
    assert "minimal 20" in r.text and "terlalu pendek" in r.text and VERDICT["claim"] in r.text
    assert session.exec(select(Verdict).where(Verdict.claim_id == claim.id)).first() is None


def test_checker_drafts_reviewer_publishes_and_outbox_fills(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Bantuan tunai Rp 5 juta dari Pemkot Kupang, klik tautan", asks=3)
    token = login(client, "cek1")
    client.post(f"/tickets/{claim.id}/assign", data={"assignee": "me", "csrf_token": token})
    client.post(f"/tickets/{claim.id}/notes", data={"text": "Cek ke Bagian Prokopim", "csrf_token": token})
    r = client.post(f"/tickets/{claim.id}/verdict", data={**VERDICT, "csrf_token": token, "action": "submit"})
    assert r.status_code == 303
    page = client.get(f"/tickets/{claim.id}").text
    assert "Vonis dikirim untuk ditinjau" in page and "Cek ke Bagian Prokopim" in page
    assert 'id="approve"' not in page  # a checker sees no approve button

    client.cookies.clear()
    token = login(client, "tinjau1")
    verdict = session.exec(select(Verdict).where(Verdict.claim_id == claim.id)).one()
    r = client.post(f"/verdicts/{verdict.id}/approve", data={"csrf_token": token})
    assert r.status_code == 303
    assert "3 warga akan diberi tahu" in client.get(f"/tickets/{claim.id}").text
    session.expire_all()
    rows = session.exec(select(Notification).where(Notification.verdict_id == verdict.id)).all()
    assert len(rows) == 3 and {n.kind for n in rows} == {"verdict"}

    public = client.get(f"/cek-fakta/{verdict.id}").text  # the public page (old /verdicts/ links redirect)
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', public, re.S)
    assert block
    data = json.loads(block.group(1))
    assert data["@type"] == "ClaimReview" and data["reviewRating"]["alternateName"] == "PENIPUAN"
    assert not any(c.address in public for c in session.exec(select(Citizen)) if c.address)
    assert client.get(f"/cek-fakta/{verdict.id}/claimreview.json").json()["claimReviewed"] == VERDICT["claim"]


def _submitted(client: TestClient, session: Session, claim: Claim, *, then: str) -> tuple[Verdict, str]:
    """cek1 submits VERDICT for the ticket through the form; then `then` logs in (returns their token)."""
    token = login(client, "cek1")
    client.post(f"/tickets/{claim.id}/verdict", data={**VERDICT, "csrf_token": token, "action": "submit"})
    verdict = session.exec(select(Verdict).where(Verdict.claim_id == claim.id)).one()
    client.cookies.clear()
    return verdict, login(client, then)


def test_reviewer_corrects_a_published_verdict(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Jembatan Liliba ditutup permanen", asks=2)
    verdict, token = _submitted(client, session, claim, then="tinjau2")
    client.post(f"/verdicts/{verdict.id}/approve", data={"csrf_token": token})
    r = client.post(
        f"/verdicts/{verdict.id}/correct",
        data={**VERDICT, "rating": "HOAKS", "csrf_token": token, "action": "submit"},
    )
    assert r.status_code == 303
    page = client.get(f"/tickets/{claim.id}").text
    assert "Koreksi dikirim untuk ditinjau" in page and 'id="approve-correction"' not in page
    session.expire_all()
    assert session.get(Verdict, verdict.id).version == 1  # not published by its writer alone
    correction = session.exec(
        select(VerdictCorrection).where(VerdictCorrection.verdict_id == verdict.id)
    ).one()

    client.cookies.clear()
    token = login(client, "tinjau1")
    assert 'id="approve-correction"' in client.get(f"/tickets/{claim.id}").text
    r = client.post(f"/corrections/{correction.id}/approve", data={"csrf_token": token})
    assert r.status_code == 303
    assert "Koreksi terbit; 2 warga" in client.get(f"/tickets/{claim.id}").text
    session.expire_all()
    assert session.get(Verdict, verdict.id).version == 2
    kinds = session.exec(select(Notification.kind).where(Notification.verdict_id == verdict.id)).all()
    assert sorted(kinds) == ["correction", "correction", "verdict", "verdict"]


def test_merge_from_the_queue(client: TestClient, staff: dict[str, StaffUser], session: Session) -> None:
    a = make_claim(session, "Air PDAM Kupang tercemar racun", asks=3)
    b = make_claim(session, "air pdam kupang ada racun", asks=1)
    token = login(client, "cek2")
    r = client.post("/tickets/merge", data={"ids": [str(a.id), str(b.id)], "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{a.id}"
    assert client.get(f"/tickets/{b.id}").headers["location"] == f"/tickets/{a.id}"
    assert f'/tickets/{b.id}"' not in client.get("/").text
    r = client.post("/tickets/merge", data={"ids": [str(a.id)], "csrf_token": token})
    assert "minimal dua" in client.get("/").text


def test_dashboard_shows_backlog_and_top_claims(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    old = make_claim(
        session, "Klaim lama yang belum selesai", asks=1, first_asked_at=utcnow() - timedelta(days=9)
    )
    hot = make_claim(session, "Klaim yang paling banyak ditanya minggu ini", asks=6)
    login(client, "humas")
    page = client.get("/dashboard").text
    assert page.count("<svg") >= 3
    assert "&gt; 7 hari: 1" in page and "&lt; 1 hari: 1" in page
    assert (
        page.index(f"/tickets/{hot.id}") < page.index(f"/tickets/{old.id}")
        if f"/tickets/{old.id}" in page
        else True
    )
    assert "6×" in page
    stats = client.get("/api/stats").json()
    assert stats["open_total"] == 2 and stats["backlog_by_age"]["> 7 hari"] == 1


def test_admin_manages_users_and_reads_the_audit_log(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    token = login(client, "admin")
    weak = client.post(
        "/users", data={"username": "baru", "role": "checker", "password": "123", "csrf_token": token}
    )
    assert weak.status_code == 422 and "at least" in weak.text and 'value="baru"' in weak.text
    ok = client.post(
        "/users",
        data={"username": "baru", "role": "checker", "password": "Sasando-Rote-77", "csrf_token": token},
    )
    assert ok.status_code == 303
    assert "baru" in client.get("/users").text
    new = session.exec(select(StaffUser).where(StaffUser.username == "baru")).one()
    client.post(f"/users/{new.id}/active", data={"active": "false", "csrf_token": token})
    session.expire_all()
    assert session.get(StaffUser, new.id).active is False
    audit = client.get("/audit").text
    assert "user.create" in audit and "user.deactivate" in audit
    actions = session.exec(select(AuditLog.action).where(AuditLog.user_id == staff["admin"].id)).all()
    assert {"user.login", "user.create", "user.deactivate"} <= set(actions)


def test_reviewer_sends_back_then_rejects_with_a_reason_citizens_get(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    claim = make_claim(session, "Menurut saya pelayanan kantor lurah paling lambat se-Kupang", asks=2)
    verdict, token = _submitted(client, session, claim, then="tinjau1")
    client.post(f"/verdicts/{verdict.id}/send-back", data={"reason": "Ini opini", "csrf_token": token})
    page = client.get(f"/tickets/{claim.id}").text
    assert "Vonis dikembalikan ke penulis." in page and "Dikembalikan peninjau: Ini opini" in page
    short = client.post(f"/tickets/{claim.id}/reject", data={"reason": "opini", "csrf_token": token})
    assert short.status_code == 303 and "minimal 10 karakter" in client.get(f"/tickets/{claim.id}").text
    reason = "Pesan ini opini, bukan klaim fakta yang bisa diperiksa."
    client.post(f"/tickets/{claim.id}/reject", data={"reason": reason, "csrf_token": token})
    page = client.get(f"/tickets/{claim.id}").text
    assert f"Ditolak: {reason}" in page and 'action="/tickets/' + str(claim.id) + '/verdict"' not in page
    session.expire_all()
    rows = session.exec(select(Notification).where(Notification.claim_id == claim.id)).all()
    assert [n.kind for n in rows] == ["rejection", "rejection"]
    assert f"/tickets/{claim.id}" in client.get("/", params={"status": "rejected"}).text


def test_control_characters_are_dropped_not_a_server_error(
    client: TestClient, staff: dict[str, StaffUser], session: Session
) -> None:
    """Found by schemathesis: PostgreSQL refuses NUL in text, so a NUL in a search was a 500."""
    claim = make_claim(session, "Harga BBM naik besok", asks=1)
    token = login(client, "cek1")
    assert client.get("/", params={"q": "BBM\x00"}).status_code == 200
    assert f"/tickets/{claim.id}" in client.get("/", params={"q": "BB\x00M"}).text
    client.post(f"/tickets/{claim.id}/notes", data={"text": "cek\x00 Pertamina", "csrf_token": token})
    assert [n["text"] for n in client.get(f"/api/tickets/{claim.id}").json()["notes"]] == ["cek Pertamina"]
