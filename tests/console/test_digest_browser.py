"""Real Chromium: the public pages without login or cookie, and a comms officer's digest from draft to
every subscriber: the notifier delivers it through the real python-telegram-bot client to the local fake
Bot API (one message each, with its buttons) and through the WhatsApp client to a fake Graph API.

Also takes the README's screenshots of the composer, the public verdict page and the card
(`CONSOLE_SCREENSHOTS=1` writes them to docs/screenshots/, otherwise to a temporary directory).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlmodel import select
from telegram import Bot

from bot.delivery import ChannelSender
from bot.outbox import Notifier
from bot.telegram import TelegramNotifier
from fact_team_console import workflow
from fact_team_console.users import create_user
from fact_team_console.web import create_app
from knowledge_base import digest_render, digests
from knowledge_base.db import session_scope
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import Citizen, Digest, Notification, StaffUser, Verdict, utcnow
from tests.bot.fake_telegram import FakeTelegram
from tests.console.conftest import real_claims
from tests.helpers.bot import bot_settings
from tests.helpers.graph import Graph
from tests.helpers.wait import eventually

pytestmark = pytest.mark.browser
README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORDS = {"maria": "Sasando-Rote-77", "yosef": "Tenun-Ikat-2026", "ana": "Komodo-Flores-88"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real app on a free port, its public links pointing at itself."""
    port = _free_port()
    monkeypatch.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("TELEGRAM_CHANNEL_ID", raising=False)
    get_digest_settings.cache_clear()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    get_digest_settings.cache_clear()


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium not installed (make install-browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = README_SHOTS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    return target


def _fact_team_publishes(shared_data: Path, n: int) -> list[int]:
    """Staff, and `n` verdicts the fact team wrote and a second person approved, from real cases."""
    with session_scope() as s:
        ids = {
            name: create_user(name, role, PASSWORDS[name], session=s).id or 0
            for name, role in (("maria", "checker"), ("yosef", "reviewer"), ("ana", "comms"))
        }
    from knowledge_base.tickets import report_claim

    published = []
    with session_scope() as s:
        maria, yosef = s.get(StaffUser, ids["maria"]), s.get(StaffUser, ids["yosef"])
        assert maria and yosef
        for i, row in enumerate(real_claims(shared_data, n)):
            claim = None
            for k in range(n - i):  # the first case was asked most
                citizen = Citizen(
                    channel="telegram", pseudonym=f"asker-{i}-{k}", address=f"{7000 + 10 * i + k}"
                )
                s.add(citizen)
                s.flush()
                claim = report_claim(row["message"][:600], session=s, citizen_id=citizen.id, message_id=None)
            assert claim is not None
            form = workflow.VerdictForm(
                row["claim"][:300],
                row["rating"] if row["rating"] in ("SALAH", "PENIPUAN") else "SALAH",
                row["summary"][:900],
                row["url"],
            )
            v = workflow.save_draft(claim.id or 0, form, user=maria, session=s, submit=True)
            workflow.approve(v.id or 0, user=yosef, session=s)
            published.append(v.id or 0)
    return published


def _subscribers() -> tuple[list[int], list[int]]:
    """Three reachable subscribers; one who sent /berhenti and one who sent /hapusdata get nothing."""
    with session_scope() as s:
        reach = [
            Citizen(channel="telegram", pseudonym="sub-tg-1", address="5550001", subscribed_digest=True),
            Citizen(channel="telegram", pseudonym="sub-tg-2", address="5550002", subscribed_digest=True),
            Citizen(
                channel="whatsapp",
                pseudonym="sub-wa-1",
                address="6281300000001",
                subscribed_digest=True,
                last_inbound_at=utcnow() - timedelta(days=3),
            ),
        ]
        gone = [
            Citizen(channel="telegram", pseudonym="stopped", address="5550003", subscribed_digest=False),
            Citizen(
                channel="telegram",
                pseudonym="deleted-x",
                address=None,
                subscribed_digest=True,
                deleted_at=utcnow(),
            ),
        ]
        s.add_all([*reach, *gone])
        s.flush()
        return [c.id or 0 for c in reach], [c.id or 0 for c in gone]


async def _notifier_delivers(fake: FakeTelegram, graph: Graph, digest_id: int) -> None:
    """`kabashoax bot notify` as it runs beside the app: real PTB client, the WhatsApp client, the DB."""
    tg = Bot(fake.token, base_url=fake.base_url)
    await tg.initialize()
    senders: dict[str, ChannelSender] = {"telegram": TelegramNotifier(tg), "whatsapp": graph.client()}
    notifier = Notifier(senders, bot_settings(BOT_NOTIFY_CONCURRENCY=4))

    def through() -> bool:
        with session_scope() as s:
            rows = s.exec(select(Notification.status).where(Notification.digest_id == digest_id)).all()
        return set(rows) == {"sent"}

    await eventually(notifier.run_once, through, what="the digest to reach every subscriber")
    await notifier.run_once()  # nothing is left to send a second time
    await tg.shutdown()


def test_public_pages_in_chromium_without_login_or_cookie(
    site: str, browser: Any, shared_data: Path, shots: Path
) -> None:
    verdict_ids = _fact_team_publishes(shared_data, 3)
    with session_scope() as s:
        imported = Verdict(
            claim="Lowongan kerja tim dapur MBG seluruh Indonesia 2025 2026",
            rating="PENIPUAN",
            summary="Tautan rekrutmen meminta data pribadi; bukan situs resmi.",
            origin="import",
            source_name="turnbackhoax.id (Mafindo)",
            published_at=utcnow() - timedelta(days=1),
            url="https://turnbackhoax.id/articles/30952-penipuan-lowongan-kerja-tim-dapur-mbg",
        )
        s.add(imported)
        s.flush()
        d = digests.create_draft(utcnow() - timedelta(days=7), utcnow(), session=s, actor_id=None)
        digests.publish(d.id or 0, session=s, actor_id=None)
        imported_id, digest_id = imported.id, d.id

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, locale="id-ID"
    )
    page = phone.new_page()
    errors: list[str] = []
    images: list[tuple[str, int, str]] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on(
        "response",
        lambda r: (
            images.append((r.url, r.status, r.headers.get("content-type", "")))
            if r.url.endswith(".png")
            else None
        ),
    )

    page.goto(f"{site}/cek-fakta")
    assert page.locator("ol.verdicts > li").count() == 4
    page.fill("input[name=q]", "Mafindo")  # the checker's name is searchable too
    page.click("form.search button")
    page.wait_for_url(lambda url: "q=Mafindo" in url)
    assert page.locator("ol.verdicts > li").count() == 1
    page.click(f"a[href='/cek-fakta/{imported_id}']")
    page.wait_for_url(f"{site}/cek-fakta/{imported_id}")
    assert "turnbackhoax.id (Mafindo)" in page.locator("dl.dates").inner_text()

    page.goto(f"{site}/cek-fakta/{verdict_ids[0]}")
    page.wait_for_load_state("networkidle")
    review = json.loads(page.locator('script[type="application/ld+json"]').text_content() or "{}")
    assert review["@type"] == "ClaimReview" and review["reviewRating"]["bestRating"] == 5
    assert (
        page.locator("meta[property='og:image']").get_attribute("content")
        == f"{site}/cek-fakta/{verdict_ids[0]}/kartu.png"
    )
    assert (f"{site}/cek-fakta/{verdict_ids[0]}/kartu.png", 200, "image/png") in images
    page.screenshot(path=str(shots / "public-verdict.png"), full_page=True)
    card = page.goto(f"{site}/cek-fakta/{verdict_ids[0]}/kartu.png")
    assert card is not None and card.status == 200
    (shots / "verdict-card.png").write_bytes(card.body())

    page.goto(f"{site}/kabar")
    page.click(f"a[href='/kabar/{digest_id}']")
    page.wait_for_url(f"{site}/kabar/{digest_id}")
    assert page.locator("ol.entries > li").count() == 4
    assert not errors, errors  # a CSP violation would be reported here
    assert phone.cookies() == []
    phone.close()


def test_a_comms_officer_publishes_the_weekly_digest_to_every_subscriber(
    site: str, browser: Any, shared_data: Path, shots: Path
) -> None:
    from playwright.sync_api import expect

    verdict_ids = _fact_team_publishes(shared_data, 4)
    with session_scope() as s:
        older = Verdict(
            claim="Bantuan tunai Rp 5 juta dari Pemkot Kupang lewat tautan pendaftaran",
            rating="PENIPUAN",
            summary="Pemkot Kupang tidak membagikan uang lewat tautan.",
            origin="console",
            published_at=utcnow() - timedelta(days=20),
        )
        s.add(older)
        s.flush()
        older_id = older.id
        weekly = digests.ensure_weekly_draft(utcnow(), session=s)  # what the scheduler does on Monday
    assert weekly is not None and weekly.created
    reach, gone = _subscribers()

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="id-ID")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{site}/login")
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", PASSWORDS["ana"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/")
    expect(page.locator("#digest-notice")).to_contain_text("Draf kabar mingguan")  # loaded by htmx

    page.click("nav >> text=Kabar")
    page.wait_for_url(f"{site}/digests")
    page.click("#create-digest")  # the last 7 days by default
    page.wait_for_url(f"{site}/digests/*")
    items = page.locator("ol.digest-items > li")
    assert items.count() == 4
    first_claim = items.first.inner_text()

    page.fill("textarea[name=intro]", "Halo warga Kupang! Empat kabar yang paling banyak ditanya pekan ini.")
    page.click("text=Simpan teks")
    page.wait_for_selector("text=Pembuka dan penutup disimpan.")
    page.click("button[aria-label='Turunkan vonis 1']")
    page.wait_for_selector("text=Urutan disimpan.")
    assert items.nth(1).inner_text() == first_claim
    page.click("button[aria-label='Keluarkan vonis 4']")
    page.wait_for_selector("text=Vonis dikeluarkan dari kabar.")
    page.fill("#verdict-q", "tunai tautan")  # live search (htmx)
    expect(page.locator("#search-results li")).to_have_count(1)
    page.click("#search-results button.add")
    page.wait_for_selector("text=Vonis ditambahkan.")
    assert items.count() == 4 and "Bantuan tunai" in items.nth(3).inner_text()

    telegram = page.locator("#preview-telegram").inner_text()
    assert telegram.startswith("KABAR CEK FAKTA KUPANG") and "Empat kabar yang paling banyak" in telegram
    assert f"/cek-fakta/{older_id}" in telegram and "Berhenti langganan: kirim /berhenti" in telegram
    assert "4 kabar sudah kami periksa" in page.locator("#preview-whatsapp-template").inner_text()
    assert "Bantuan tunai" in page.locator("#preview-web").inner_text()
    page.screenshot(path=str(shots / "digest-composer.png"), full_page=True)

    page.check("input[name=confirm]")
    page.click("#publish-digest")
    page.wait_for_selector("text=Kabar terbit: 3 pelanggan masuk antrean kirim.")
    digest_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("textarea[name=intro]").count() == 0  # frozen

    with session_scope() as s:
        rows = s.exec(select(Notification).where(Notification.digest_id == digest_id)).all()
        assert sorted(n.citizen_id or 0 for n in rows) == sorted(reach)
        assert not set(gone) & {n.citizen_id for n in rows}
        assert {(n.kind, n.status) for n in rows} == {("digest", "pending")}
        assert len({n.dedupe_key for n in rows}) == 3
    assert set(verdict_ids)  # the fact team's verdicts are what was drafted
    page.goto(f"{site}/kabar/{digest_id}")
    assert "Empat kabar yang paling banyak" in page.locator("article").inner_text()

    fake, graph = FakeTelegram(fail_429=1, retry_after=1).start(), Graph()  # Telegram says "slow down" once
    try:  # its own thread: Playwright's sync API keeps an event loop running in this one
        with ThreadPoolExecutor(1) as worker:
            worker.submit(asyncio.run, _notifier_delivers(fake, graph, digest_id)).result(timeout=180)
    finally:
        fake.stop()
    with session_scope() as s:
        view = digests.view(s.get_one(Digest, digest_id), session=s)
        shown = [e.verdict_id for e in view.entries]
    previewed = digest_render.telegram(view)
    sent = [m for m in fake.sent() if m["text"].startswith("KABAR CEK FAKTA")]  # askers got their verdicts
    assert sorted(m["chat_id"] for m in sent) == ["5550001", "5550002"]  # one each, not the two who left
    assert [c.method for c in fake.calls].count("sendMessage429") == 1
    for m in sent:
        assert m["text"] == previewed.text and m["text"].startswith("KABAR CEK FAKTA KUPANG")
        keys = [b for row in m["reply_markup"]["inline_keyboard"] for b in row]
        assert [b["url"] for b in keys if "/cek-fakta/" in b.get("url", "")] == [
            f"{site}/cek-fakta/{v}" for v in shown
        ]
        assert keys[-1] == {"text": "Berhenti langganan", "callback_data": f"digest:unsub:{digest_id}"}
    assert older_id in shown
    (wa,) = graph.posts  # three days since the citizen last wrote: the approved template
    assert wa["to"] == "6281300000001" and wa["template"]["name"] == "kabar_cek_fakta"
    assert wa["template"]["components"][1]["parameters"] == [
        {"type": "payload", "payload": f"digest:unsub:{digest_id}"}
    ]
    page.goto(f"{site}/digests/{digest_id}")
    assert "0 antre · 3 terkirim" in page.locator("main").inner_text()
    assert not errors, errors
    context.close()
