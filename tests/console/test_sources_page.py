"""The console's source status page and the banner for sources failing for a day (staff see both)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from knowledge_base.models import Article, Source, StaffUser, utcnow
from tests.console.conftest import login


def add_sources(session: Session) -> None:
    now = utcnow()
    healthy = Source(
        name="pos-kupang",
        outlet="Pos Kupang",
        feed_url="https://pos.example.id/rss",
        last_ok_at=now - timedelta(minutes=20),
        last_polled_at=now - timedelta(minutes=20),
        next_poll_at=now + timedelta(minutes=40),
    )
    dead = Source(
        name="kupang-kota",
        outlet="Pemkot Kupang",
        feed_url="https://kota.example.id/rss",
        error_count=5,
        last_error="HTTP 404 from https://kota.example.id/rss <script>alert(1)</script>",
        last_error_at=now - timedelta(hours=1),
        failing_since=now - timedelta(hours=30),
        next_poll_at=now + timedelta(hours=8),
    )
    session.add_all([healthy, dead])
    session.flush()
    for n in range(3):  # two this week, one older
        fetched = now - timedelta(days=1 if n < 2 else 20)
        session.add(
            Article(
                source_id=healthy.id or 0,
                guid=str(n),
                url=f"https://pos.example.id/{n}",
                title=f"Berita {n}",
                content_hash=f"h{n}",
                fetched_at=fetched,
            )
        )
    session.commit()


def test_staff_see_each_sources_state(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    add_sources(session)
    login(client, "cek1")
    page = client.get("/sources")
    assert page.status_code == 200
    html = page.text
    assert "pos-kupang" in html and "kupang-kota" in html
    start = html.index("<strong>pos-kupang")
    row = html[start : html.index("</tr>", start)]
    assert ">2</td>" in row and ">3</td>" in row  # items this week, total
    assert "⚠ gagal 5×" in html and "gagal sejak" in html
    assert "HTTP 404 from https://kota.example.id/rss" in html
    assert "<script>alert(1)</script>" not in html  # feed errors are untrusted text: escaped
    assert 'href="/sources"' in html  # in the navigation


def test_the_banner_warns_about_a_source_failing_for_a_day(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    login(client, "humas")
    page = client.get("/")
    assert 'hx-get="/sources/warning"' in page.text  # every page loads the banner
    assert client.get("/sources/warning").text.strip() == ""  # nothing failing: no banner
    add_sources(session)
    banner = client.get("/sources/warning", headers={"HX-Request": "true"})
    assert banner.status_code == 200
    assert 'role="alert"' in banner.text and "kupang-kota" in banner.text and "pos-kupang" not in banner.text
    assert "lebih dari 24 jam" in banner.text


def test_a_source_failing_for_hours_only_gets_no_banner(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    session.add(
        Source(
            name="baru-gagal",
            outlet="Baru",
            feed_url="https://baru.example.id/rss",
            error_count=2,
            failing_since=utcnow() - timedelta(hours=3),
        )
    )
    session.commit()
    login(client, "admin")
    assert client.get("/sources/warning").text.strip() == ""


def test_the_pages_need_a_login(client: TestClient) -> None:
    assert client.get("/sources").status_code == 303
    assert client.get("/sources/warning", headers={"HX-Request": "true"}).status_code == 401
