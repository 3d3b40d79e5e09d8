"""The public web without login: verdicts with ClaimReview, cards, feeds, digests, nothing personal."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import extruct
import feedparser
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from fact_team_console.claimreview import SCALE, appearances
from knowledge_base import digests
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import CitizenReport, Claim, Rating, StaffUser, Verdict, utcnow
from knowledge_base.verdicts import correct_verdict
from tests.console.conftest import add_citizen, login

BASE = "https://cekfakta.kupangkota.go.id"
PERSONAL_ADDRESS = "+6281234500001"


@pytest.fixture(autouse=True)
def public_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    get_digest_settings.cache_clear()
    yield
    get_digest_settings.cache_clear()


def publish(session: Session, claim: str, rating: str = "HOAKS", **fields: Any) -> Verdict:
    status = fields.pop("status", "published")
    values: dict[str, Any] = {
        "summary": f"Pemerintah Kota Kupang menyatakan kabar “{claim}” tidak benar. Uji lab normal.",
        "sources": ["https://kupangkota.go.id/berita/klarifikasi"],
        "origin": "console",
        "published_at": utcnow() - timedelta(days=1),
        **fields,
    }
    verdict = Verdict(claim=claim, rating=rating, status=status, **values)
    session.add(verdict)
    session.commit()
    return verdict


def json_ld(html: str, url: str) -> dict[str, Any]:
    data = extruct.extract(html, base_url=url, syntaxes=["json-ld", "opengraph"], uniform=True)
    reviews = [d for d in data["json-ld"] if d.get("@type") == "ClaimReview"]
    assert len(reviews) == 1, data["json-ld"]
    review: dict[str, Any] = reviews[0]
    review["_og"] = data["opengraph"][0] if data["opengraph"] else {}
    return review


def assert_public(response: Any) -> None:
    """No login was needed, no cookie is set, and the strict policy forbids every script."""
    assert response.status_code == 200, response.text[:300]
    assert "set-cookie" not in response.headers
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe" not in csp and "script-src" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


# --------------------------------------------------------------------------- ClaimReview


def test_every_rating_on_the_scale_becomes_claimreview_json_ld(
    client: TestClient, session: Session, shared_data: Path
) -> None:
    examples = [json.loads(p.read_text()) for p in sorted((shared_data / "claimreview").glob("*.jsonld"))]
    common = set.intersection(*(set(e) for e in examples))  # keys every schema.org example has
    assert {"@context", "@type", "datePublished", "url", "author", "claimReviewed", "itemReviewed"} <= common
    for rating in Rating:
        expires = utcnow() + timedelta(days=30) if rating is Rating.TIDAK_TERBUKTI else None
        v = publish(
            session,
            f"Kabar uji untuk penilaian {rating.value} di Kota Kupang",
            rating.value,
            expires_at=expires,
        )
        url = f"{BASE}/cek-fakta/{v.id}"
        page = client.get(f"/cek-fakta/{v.id}")
        assert_public(page)
        review = json_ld(page.text, url)
        assert common <= set(review), common - set(review)
        assert review["@context"] in ("https://schema.org", "http://schema.org")
        assert review["reviewRating"] == {
            "@type": "Rating",
            "ratingValue": SCALE[rating].value,
            "bestRating": 5,
            "worstRating": 1,
            "alternateName": rating.value,
        }
        assert set(examples[0]["reviewRating"]) - {"image"} <= set(review["reviewRating"]) | {"worstRating"}
        assert review["claimReviewed"] == v.claim and review["url"] == url
        assert review["datePublished"] == v.published_at.date().isoformat()  # type: ignore[union-attr]
        assert review["author"] == {
            "@type": "Organization",
            "name": "Tim Cek Fakta Kota Kupang",
            "url": f"{BASE}/cek-fakta",
        }
        assert review["itemReviewed"]["@type"] == "Claim"
        assert ("expires" in review) == (expires is not None)
        if expires is not None:
            assert review["expires"] == expires.date().isoformat()
        og = review["_og"]
        assert og["og:image"] == f"{url}/kartu.png" == review["image"]
        assert og["og:url"] == url and og["og:title"].startswith(f"{rating.value}: ")
        assert client.get(f"/cek-fakta/{v.id}/claimreview.json").json() == {
            k: v for k, v in review.items() if k != "_og"
        }


def test_an_imported_verdict_is_its_fact_checkers_review(client: TestClient, session: Session) -> None:
    original = "https://turnbackhoax.id/articles/30952-penipuan-lowongan-kerja-tim-dapur-mbg"
    v = publish(
        session,
        "Lowongan kerja tim dapur MBG seluruh Indonesia 2025 2026",
        "PENIPUAN",
        origin="import",
        source_name="turnbackhoax.id (Mafindo)",
        url=original,
        sources=[original],
    )
    page = client.get(f"/cek-fakta/{v.id}")
    review = json_ld(page.text, f"{BASE}/cek-fakta/{v.id}")
    assert review["author"] == {
        "@type": "Organization",
        "name": "turnbackhoax.id (Mafindo)",
        "url": "https://turnbackhoax.id/",
    }
    assert review["url"] == original
    assert "Tim Cek Fakta Kota Kupang" not in json.dumps(review)
    assert "Diperiksa oleh</dt><dd>turnbackhoax.id (Mafindo)" in page.text
    assert f'href="{original}"' in page.text and "Baca pemeriksaan aslinya" in page.text
    listing = client.get("/cek-fakta", params={"q": "dapur MBG"}).text
    assert "diperiksa turnbackhoax.id (Mafindo)" in listing


def test_appearance_comes_from_the_ticket_without_anything_personal(
    client: TestClient, session: Session
) -> None:
    text = (
        "Sebarkan! Daftar bantuan di https://bantuan-pemkot-kupang.example/daftar sekarang, "
        "info hubungi https://wa.me/6281234567890 atau https://t.me/joinchat/abc, "
        "foto KTP kirim ke https://form.example/u/081234567890"
    )
    claim = Claim(text=text, text_hash="h-appearance", status="published", ask_count=1)
    session.add(claim)
    session.flush()
    v = publish(session, "Bantuan Pemkot Kupang lewat formulir daring", "PENIPUAN", claim_id=claim.id)
    review = json_ld(client.get(f"/cek-fakta/{v.id}").text, f"{BASE}/cek-fakta/{v.id}")
    assert review["itemReviewed"] == {
        "@type": "Claim",
        "appearance": [{"@type": "CreativeWork", "url": "https://bantuan-pemkot-kupang.example/daftar"}],
    }
    assert appearances(None) == []


# --------------------------------------------------------------------------- pages


def test_the_list_searches_and_filters_current_verdicts(client: TestClient, session: Session) -> None:
    pdam = publish(session, "Air PDAM Kupang tercemar racun sianida")
    scam = publish(session, "Bantuan tunai Rp 5 juta dari Pemkot lewat tautan", "PENIPUAN")
    old = publish(
        session, "Jalan El Tari ditutup selama festival", "BENAR", expires_at=utcnow() - timedelta(days=1)
    )
    publish(session, "Draf yang belum terbit tentang PDAM", status="draft")
    page = client.get("/cek-fakta")
    assert_public(page)
    assert f'href="/cek-fakta/{pdam.id}"' in page.text and f'href="/cek-fakta/{scam.id}"' in page.text
    assert f'href="/cek-fakta/{old.id}"' not in page.text and "Draf yang belum terbit" not in page.text
    found = client.get("/cek-fakta", params={"q": "pdam racun"}).text
    assert f'href="/cek-fakta/{pdam.id}"' in found and f'href="/cek-fakta/{scam.id}"' not in found
    only_scams = client.get("/cek-fakta", params={"rating": "PENIPUAN"}).text
    assert f'href="/cek-fakta/{scam.id}"' in only_scams and f'href="/cek-fakta/{pdam.id}"' not in only_scams
    assert client.get("/cek-fakta", params={"q": "%"}).status_code == 200


def test_expired_corrected_withdrawn_and_unpublished_verdicts(client: TestClient, session: Session) -> None:
    old = publish(
        session, "Jalan El Tari ditutup selama festival", "BENAR", expires_at=utcnow() - timedelta(days=1)
    )
    page = client.get(f"/cek-fakta/{old.id}").text
    assert "Sudah tidak berlaku sejak" in page
    fixed = publish(session, "Air PDAM Kupang tercemar racun")
    correct_verdict(fixed.id or 0, session=session, rating="MENYESATKAN", summary="Sebagian pipa keruh.")
    session.commit()
    page = client.get(f"/cek-fakta/{fixed.id}").text
    assert "Diperbarui" in page and "versi 2" in page and "MENYESATKAN" in page
    assert json_ld(page, f"{BASE}/cek-fakta/{fixed.id}")["dateModified"]
    gone = publish(session, "Kabar yang ditarik", status="withdrawn")
    assert client.get(f"/cek-fakta/{gone.id}").status_code == 410
    draft = publish(session, "Kabar yang belum terbit", status="in_review")
    missing = client.get(f"/cek-fakta/{draft.id}")
    assert missing.status_code == 404 and "tidak ditemukan" in missing.text
    assert client.get(f"/cek-fakta/{draft.id}/kartu.png").status_code == 404
    assert client.get("/kabar/2147483647").status_code == 404


def test_old_links_keep_working(client: TestClient, session: Session) -> None:
    v = publish(session, "Air PDAM Kupang tercemar racun")
    old = client.get(f"/verdicts/{v.id}")
    assert (old.status_code, old.headers["location"]) == (301, f"/cek-fakta/{v.id}")
    api = client.get(f"/api/verdicts/{v.id}/claimreview")
    assert (api.status_code, api.headers["location"]) == (308, f"/cek-fakta/{v.id}/claimreview.json")
    short = client.get(f"/c/{v.id}")
    assert (short.status_code, short.headers["location"]) == (301, f"/cek-fakta/{v.id}")
    assert client.get(f"/verdicts/{v.id}", follow_redirects=True).status_code == 200


def test_citizen_and_staff_text_is_escaped(client: TestClient, session: Session) -> None:
    v = publish(session, 'Pesan <script>alert("x")</script><img src=x onerror=alert(1)> soal PDAM')
    page = client.get(f"/cek-fakta/{v.id}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert block and "</script" not in block.group(1) and "\\u003cscript\\u003e" in block.group(1)


def test_nothing_personal_on_any_public_page(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    claim = Claim(
        text="Air PDAM Kupang tercemar racun, kata tetangga",
        text_hash="h-private",
        status="published",
        ask_count=1,
    )
    session.add(claim)
    session.flush()
    citizen = add_citizen(session, 1)
    citizen.subscribed_digest = True
    session.add_all([citizen, CitizenReport(claim_id=claim.id or 0, citizen_id=citizen.id, text=claim.text)])
    v = publish(
        session,
        "Air PDAM Kupang tercemar racun",
        claim_id=claim.id,
        author_id=staff["cek1"].id,
        reviewer_id=staff["tinjau1"].id,
    )
    d = digests.create_draft(
        utcnow() - timedelta(days=7), utcnow(), session=session, actor_id=staff["humas"].id
    )
    digests.publish(d.id or 0, session=session, actor_id=staff["humas"].id)
    session.commit()
    secrets = [
        citizen.pseudonym,
        citizen.address or "",
        *(u.username for u in staff.values()),
        "kata tetangga",
    ]
    for path in (
        "/cek-fakta",
        f"/cek-fakta/{v.id}",
        f"/cek-fakta/{v.id}/claimreview.json",
        "/cek-fakta/feed.xml",
        "/kabar",
        f"/kabar/{d.id}",
        "/kabar/feed.xml",
    ):
        response = client.get(path)
        assert_public(response)
        for secret in secrets:
            assert secret not in response.text, (path, secret)


def test_public_pages_need_no_login_but_a_staff_cookie_is_not_cached_publicly(
    client: TestClient, session: Session, staff: dict[str, StaffUser]
) -> None:
    v = publish(session, "Air PDAM Kupang tercemar racun")
    anonymous = client.get(f"/cek-fakta/{v.id}")
    assert anonymous.headers["cache-control"] == "public, max-age=300"
    assert "Cookie" in anonymous.headers["vary"]
    login(client, "humas")
    logged_in = client.get(f"/cek-fakta/{v.id}")
    assert logged_in.status_code == 200 and logged_in.headers["cache-control"].startswith("private")


# --------------------------------------------------------------------------- card and feeds


def test_the_card_is_a_1080_square_png(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = publish(session, "Lowongan kerja tim dapur MBG seluruh Indonesia 2025 2026 " * 5, "PENIPUAN")
    response = client.get(f"/cek-fakta/{v.id}/kartu.png")
    assert response.status_code == 200 and "set-cookie" not in response.headers
    csp = response.headers["content-security-policy"]  # an image cannot run script; its viewer styles it
    assert csp.startswith("default-src 'none'") and "script" not in csp
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("PNG", (1080, 1080))
    stamp = image.convert("RGB").crop((540, 160, 1010, 420)).getcolors(1_000_000) or []
    assert any(colour == (179, 38, 30) for _, colour in stamp)  # the red stamp of a false rating
    monkeypatch.setenv("PUBLIC_CARD_FONT", "/nonexistent/font.ttf")  # Pillow's bundled font instead
    get_digest_settings.cache_clear()
    fallback = client.get(f"/cek-fakta/{v.id}/kartu.png")
    assert Image.open(io.BytesIO(fallback.content)).size == (1080, 1080)
    assert fallback.content != response.content


def test_the_feeds_parse_with_feedparser(client: TestClient, session: Session) -> None:
    pdam = publish(session, "Air PDAM Kupang tercemar racun")
    scam = publish(
        session,
        "Bantuan tunai Rp 5 juta lewat tautan",
        "PENIPUAN",
        published_at=utcnow() - timedelta(hours=2),
    )
    response = client.get("/cek-fakta/feed.xml")
    assert_public(response)
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo and feed.version == "atom10"
    titles = [e.title for e in feed.entries]
    assert titles[:2] == [
        "[PENIPUAN] Bantuan tunai Rp 5 juta lewat tautan",
        "[HOAKS] Air PDAM Kupang tercemar racun",
    ]
    entry = feed.entries[1]
    assert entry.link == f"{BASE}/cek-fakta/{pdam.id}" and entry.author == "Tim Cek Fakta Kota Kupang"
    assert "Uji lab normal" in entry.content[0].value and entry.tags[0].term == "HOAKS"
    assert scam.id
    d = digests.create_draft(utcnow() - timedelta(days=7), utcnow(), session=session, actor_id=None)
    digests.publish(d.id or 0, session=session, actor_id=None)
    session.commit()
    kabar = feedparser.parse(client.get("/kabar/feed.xml").content)
    assert not kabar.bozo and kabar.entries[0].link == f"{BASE}/kabar/{d.id}"
    assert kabar.entries[0].title.startswith("Kabar Cek Fakta Kupang, ")
    assert (
        "[HOAKS]" not in kabar.entries[0].content[0].value
        and "HOAKS: Air PDAM" in kabar.entries[0].content[0].value
    )


def test_the_digest_archive_and_a_digest_page(client: TestClient, session: Session) -> None:
    publish(session, "Air PDAM Kupang tercemar racun")
    d = digests.create_draft(utcnow() - timedelta(days=7), utcnow(), session=session, actor_id=None)
    draft_page = client.get(f"/kabar/{d.id}")
    assert draft_page.status_code == 404  # a draft is not public
    digests.set_texts(
        d.id or 0, intro="Halo warga Kupang!", outro="Salam kabas hoaks.", session=session, actor_id=None
    )
    digests.publish(d.id or 0, session=session, actor_id=None)
    session.commit()
    archive = client.get("/kabar")
    assert_public(archive)
    assert f'href="/kabar/{d.id}"' in archive.text and "1 kabar" in archive.text
    page = client.get(f"/kabar/{d.id}")
    assert_public(page)
    assert "Halo warga Kupang!" in page.text and "Air PDAM Kupang tercemar racun" in page.text
    assert 'href="https://cekfakta.kupangkota.go.id/cek-fakta/' in page.text
    assert not re.search(r"warga-[0-9a-f]{8}", page.text)
