"""The comms composer in the console: roles, CSRF, the whole draft → edit → preview → publish flow, audit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from fact_team_console import routes_digest
from knowledge_base import digests
from knowledge_base.dates import WITA
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import AuditLog, Citizen, Digest, Notification, StaffUser, Verdict, utcnow
from tests.console.conftest import add_citizen, csrf_of, login, make_claim


@pytest.fixture(autouse=True)
def public_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://cekfakta.kupangkota.go.id")
    monkeypatch.delenv("TELEGRAM_CHANNEL_ID", raising=False)
    get_digest_settings.cache_clear()
    yield
    get_digest_settings.cache_clear()


def team_verdict(session: Session, text: str, asks: int, rating: str = "HOAKS", days_ago: int = 2) -> Verdict:
    claim = make_claim(session, text, asks=asks, status="published")
    verdict = Verdict(
        claim=text,
        rating=rating,
        summary=f"Pemkot Kupang membantah kabar ini. {text} tidak benar.",
        origin="console",
        claim_id=claim.id,
        published_at=utcnow() - timedelta(days=days_ago),
    )
    session.add(verdict)
    session.commit()
    return verdict


def subscribers(session: Session) -> list[Citizen]:
    """Two Telegram and one WhatsApp subscriber; one who unsubscribed and one who deleted their data."""
    people = []
    for n, channel in ((1, "telegram"), (2, "telegram"), (3, "whatsapp"), (4, "telegram"), (5, "telegram")):
        c = add_citizen(session, 900 + n, channel)
        c.subscribed_digest = n != 4
        if n == 5:
            c.deleted_at, c.address = utcnow(), None
        session.add(c)
        people.append(c)
    session.commit()
    return people[:3]


def post(client: TestClient, path: str, token: str, **data: str) -> str:
    response = client.post(path, data={**data, "csrf_token": token})
    assert response.status_code == 303, (path, response.status_code, response.text[:300])
    return str(response.headers["location"])


def digest_routes() -> list[APIRoute]:
    return [r for r in routes_digest.router.routes if isinstance(r, APIRoute)]


def test_every_composer_route_needs_a_comms_or_admin_session(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    for route in digest_routes():
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in route.methods:
            response = client.request(method, path)
            assert response.status_code in (303, 401, 403), (method, path, response.status_code)
            if response.status_code == 303:
                assert response.headers["location"].startswith("/login")
    for name in ("cek1", "tinjau1"):
        token = login(client, name)
        assert client.get("/digests").status_code == 403
        assert client.post("/digests", data={"csrf_token": token}).status_code == 403
        assert 'href="/digests"' not in client.get("/").text
        client.cookies.clear()
    for name in ("humas", "admin"):
        login(client, name)
        assert client.get("/digests").status_code == 200
        assert 'href="/digests"' in client.get("/").text
        client.cookies.clear()


def test_changes_need_the_csrf_token_and_the_same_site(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    token = login(client, "humas")
    assert client.post("/digests", data={"start": "2026-03-01", "end": "2026-03-07"}).status_code == 403
    cross = client.post(
        "/digests",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    assert session.exec(select(Digest)).all() == []


def test_a_comms_officer_drafts_edits_previews_and_publishes(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    most = team_verdict(session, "Air PDAM Kupang tercemar racun sianida", asks=4)
    less = team_verdict(session, "Jembatan Liliba ditutup permanen mulai besok", asks=1, rating="SALAH")
    older = team_verdict(
        session, "Bantuan tunai Rp 5 juta dari Pemkot lewat tautan", asks=2, rating="PENIPUAN", days_ago=30
    )
    reach = subscribers(session)
    token = login(client, "humas")

    today = utcnow().astimezone(WITA).date()
    page = client.get("/digests").text
    assert f'value="{(today - timedelta(days=6)).isoformat()}"' in page  # "the last 7 days" by default
    assert re.search(r'data-channel="telegram">\d+<', page)
    location = post(
        client, "/digests", token, start=(today - timedelta(days=6)).isoformat(), end=today.isoformat()
    )
    digest_id = int(location.rsplit("/", 1)[1])
    page = client.get(location).text
    assert page.index("Air PDAM Kupang") < page.index("Jembatan Liliba")  # most asked first
    assert "Bantuan tunai" not in page.split('id="preview"')[0].split("Tambah vonis")[0]

    post(
        client,
        f"/digests/{digest_id}/texts",
        token,
        intro="Halo warga Kupang! Ini kabar pekan ini.",
        outro="Salam kabas hoaks.",
    )
    post(client, f"/digests/{digest_id}/items/{less.id}/move", token, direction="up")
    results = client.get(
        f"/digests/{digest_id}/search", params={"q": "tunai"}, headers={"HX-Request": "true"}
    )
    assert f'name="verdict_id" value="{older.id}"' in results.text and "<html" not in results.text
    post(client, f"/digests/{digest_id}/items", token, verdict_id=str(older.id))
    post(
        client,
        f"/digests/{digest_id}/items/{older.id}/line",
        token,
        line="Tautan itu penipuan; Pemkot tidak membagi uang tunai.",
    )
    post(client, f"/digests/{digest_id}/items/{most.id}/drop", token)
    post(client, f"/digests/{digest_id}/items", token, verdict_id=str(most.id))

    page = client.get(f"/digests/{digest_id}").text
    telegram = re.search(r'id="preview-telegram">(.*?)</div>', page, re.S)
    assert telegram
    text = telegram.group(1)
    assert text.startswith("KABAR CEK FAKTA KUPANG")
    assert text.index("Jembatan Liliba") < text.index("Bantuan tunai") < text.index("Air PDAM")
    assert "Tautan itu penipuan; Pemkot tidak membagi uang tunai." in text
    assert "Berhenti langganan: kirim /berhenti" in text
    assert 'class="kb-button callback"' in page and "1. SALAH" in page
    assert 'id="preview-whatsapp-template"' in page and "kabar_cek_fakta" in page
    assert "3 kabar sudah kami periksa" in page
    web = page.split('id="preview-web"')[1]
    assert "Halo warga Kupang! Ini kabar pekan ini." in web

    refused = client.post(f"/digests/{digest_id}/publish", data={"csrf_token": token})
    assert refused.status_code == 303
    assert session.exec(select(Notification).where(Notification.digest_id == digest_id)).all() == []
    post(client, f"/digests/{digest_id}/publish", token, confirm="yes")
    assert "Kabar terbit: 3 pelanggan masuk antrean kirim." in client.get(f"/digests/{digest_id}").text
    post(client, f"/digests/{digest_id}/publish", token, confirm="yes")  # a double click sends nothing more

    session.expire_all()
    rows = session.exec(select(Notification).where(Notification.digest_id == digest_id)).all()
    assert sorted(n.citizen_id or 0 for n in rows) == sorted(c.id or 0 for c in reach)
    assert {n.kind for n in rows} == {"digest"}

    # Frozen: no edit forms, and an edit attempt is refused with a message.
    page = client.get(f"/digests/{digest_id}").text
    assert f'action="/digests/{digest_id}/texts"' not in page and "Buat koreksi" in page
    post(client, f"/digests/{digest_id}/items/{less.id}/drop", token)
    assert "tidak bisa diubah" in client.get(f"/digests/{digest_id}").text
    listing = client.get("/digests").text
    assert re.search(rf'<td class="num">{digest_id}</td>.*?<td class="num">3</td>', listing, re.S)

    actions = session.exec(
        select(AuditLog.action, AuditLog.user_id).where(
            AuditLog.entity == "digest", AuditLog.entity_id == digest_id
        )
    ).all()
    assert {a for a, _ in actions} >= {
        "digest.draft",
        "digest.texts",
        "digest.move",
        "digest.add",
        "digest.line",
        "digest.drop",
        "digest.publish",
    }
    assert {u for _, u in actions} == {staff["humas"].id}
    assert staff["humas"].username not in client.get(f"/kabar/{digest_id}").text


def test_the_weekly_draft_shows_on_the_comms_home(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    team_verdict(session, "Air PDAM Kupang tercemar racun sianida", asks=3, days_ago=1)
    weekly = digests.ensure_weekly_draft(utcnow(), session=session)
    session.commit()
    assert weekly is not None
    login(client, "humas")
    home = client.get("/").text
    assert 'hx-get="/digests/notice"' in home
    notice = client.get("/digests/notice", headers={"HX-Request": "true"}).text
    assert "Draf kabar mingguan" in notice and f'href="/digests/{weekly.digest_id}"' in notice
    client.cookies.clear()
    login(client, "cek1")
    assert 'hx-get="/digests/notice"' not in client.get("/").text


def test_a_correction_from_the_console(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    team_verdict(session, "Air PDAM Kupang tercemar racun sianida", asks=3, days_ago=1)
    d = digests.create_draft(utcnow() - timedelta(days=7), utcnow(), session=session, actor_id=None)
    digests.publish(d.id or 0, session=session, actor_id=None)
    session.commit()
    token = login(client, "humas")
    location = post(client, f"/digests/{d.id}/correct", token)
    fix_id = int(location.rsplit("/", 1)[1])
    assert fix_id != d.id and 'name="correction_note"' in client.get(location).text
    post(client, f"/digests/{fix_id}/publish", token, confirm="yes")
    assert "apa yang dikoreksi" in client.get(location).text  # refused without a note
    post(
        client,
        f"/digests/{fix_id}/texts",
        token,
        intro="Halo",
        outro="Salam",
        correction_note="Nomor 1 salah tanggal terbit.",
    )
    post(client, f"/digests/{fix_id}/publish", token, confirm="yes")
    public = client.get(f"/kabar/{fix_id}").text
    assert "Koreksi atas" in public and "Nomor 1 salah tanggal terbit." in public
    assert "sudah dikoreksi" in client.get(f"/kabar/{d.id}").text
    session.expire_all()
    assert (
        session.exec(select(Digest).where(col(Digest.correction_of_id) == d.id)).one().status == "published"
    )
    assert csrf_of(client, "/digests")
