"""The real console in headless Chromium: triage, draft, second-person approval, then the bot answers.

Also takes the README screenshots (docs/screenshots/) from realistic data: real circulated messages
from turnbackhoax.id as citizen asks.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlmodel import select

from fact_team_console import workflow
from fact_team_console.users import create_user
from fact_team_console.web import create_app
from knowledge_base.db import session_scope
from knowledge_base.models import Citizen, CitizenReport, Claim, Notification, StaffUser, Verdict, utcnow
from tests.console.conftest import real_claims

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
XSS = (
    'Tolong cek <script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'"> '
    "katanya ada bantuan tunai dari Pemkot Kupang untuk semua warga hari ini, daftar lewat tautan"
)
MAIN_MESSAGE = (
    "PM Timor Leste Xanana Gusmao meminta Jusuf Kalla ditangkap karena sudah menghina agama Kristen, "
    "sebarkan ke semua grup keluarga di Kupang"
)
PARAPHRASE = (
    "Beta dapa kiriman bilang PM Timor Leste minta Jusuf Kalla ditangkap karena hina agama Kristen, "
    "itu betul ko?"
)
SUMMARY = (
    "Tidak ada pernyataan PM Timor Leste yang meminta Jusuf Kalla ditangkap. Pemberitaan kredibel tidak "
    "memuat klaim itu; unggahan ini konten palsu."
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ask(session, text: str, citizen_no: int, channel: str = "telegram") -> Claim:  # type: ignore[no-untyped-def]
    """A citizen's ask filed the way the bot files it."""
    from knowledge_base.tickets import report_claim

    citizen = Citizen(
        channel=channel, pseudonym=f"{citizen_no:08x}" + "c0ffee" * 4, address=f"+62813{citizen_no:07d}"
    )
    session.add(citizen)
    session.flush()
    return report_claim(text, session=session, citizen_id=citizen.id, message_id=None)


def _topic(text: str) -> str | None:
    lowered = text.lower()
    for words, topic in (
        (("loker", "lowongan"), "lowongan palsu"),
        (("mbg",), "MBG"),
        (("polri", "polisi"), "hukum"),
    ):
        if any(w in lowered for w in words):
            return topic
    return None


def _seed(shared_data: Path) -> dict[str, int]:
    """Staff, a realistic queue spread over ten days, two published verdicts, the XSS ask, the main claim."""
    with session_scope() as s:
        ids = {
            name: create_user(name, role, PASSWORDS[name], session=s).id or 0
            for name, role in (("maria", "checker"), ("yosef", "reviewer"), ("ana", "comms"))
        }
    rows = [r for r in real_claims(shared_data, 16) if "Timor Leste" not in r["message"]][:14]
    now = utcnow()
    citizen_no = 1
    with session_scope() as s:
        maria = s.get(StaffUser, ids["maria"])
        yosef = s.get(StaffUser, ids["yosef"])
        assert maria and yosef
        for i, row in enumerate(rows):
            claim = None
            for _ in range(1 + (7 * i) % 6):
                claim = _ask(s, row["message"][:600], citizen_no)
                citizen_no += 1
            assert claim is not None
            age = timedelta(days=(i * 5) % 11, hours=i)
            claim.first_asked_at = now - age
            claim.last_asked_at = now - age / 3
            claim.topic = _topic(row["message"])
            for report in s.exec(select(CitizenReport).where(CitizenReport.claim_id == claim.id)):
                report.created_at = claim.last_asked_at
            s.add(claim)
            s.flush()
            if i in (3, 8):  # two already answered, for the dashboard's time-to-verdict
                form = workflow.VerdictForm(
                    row["claim"][:300], "SALAH" if i == 3 else "PENIPUAN", row["summary"][:900], row["url"]
                )
                v = workflow.save_draft(claim.id or 0, form, user=maria, session=s, submit=True)
                workflow.approve(v.id or 0, user=yosef, session=s)
            elif i % 3 == 1:
                workflow.assign(claim.id or 0, ids["maria"], user=maria, session=s)
        xss = _ask(s, XSS, citizen_no)
        citizen_no += 1
        main = None
        for _ in range(3):
            main = _ask(s, MAIN_MESSAGE, citizen_no)
            citizen_no += 1
        assert main is not None and main.ask_count == 3
        return {"main": main.id or 0, "xss": xss.id or 0, **ids}


@pytest.fixture
def live_console(app_env: Path) -> Iterator[str]:
    port = _free_port()
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


@pytest.fixture
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium not installed (make install-browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _login(page, base: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_triage_verdict_approval_and_the_bot_answers(  # type: ignore[no-untyped-def]
    live_console: str,
    browser,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    base = live_console
    seeded = _seed(shared_data)
    # The README's screenshots are rewritten only on request, so a test run leaves the tree clean.
    shots = README_SHOTS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="id-ID")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # A checker triages: the queue, a live search (htmx), the ticket.
    _login(page, base, "maria")
    assert page.locator("table.queue tbody tr").count() >= 12
    page.screenshot(path=str(shots / "queue.png"), full_page=True)
    page.fill("#q", "Xanana")
    expect(page.locator("table.queue tbody tr")).to_have_count(1)  # the CSP forbids eval-based waits
    page.click(f"a[href='/tickets/{seeded['main']}']")
    page.wait_for_url(f"{base}/tickets/{seeded['main']}")
    assert "3" in page.locator(".facts").inner_text()
    page.click("text=Ambil tiket ini")
    page.wait_for_selector("text=Penugasan disimpan.")
    page.fill(
        "textarea[name=text]",
        "Tidak ada pemberitaan kredibel; arsip turnbackhoax 21/04/2026 sudah membantah.",
    )
    page.click("text=Tambah catatan")
    page.wait_for_selector("text=Catatan ditambahkan.")
    page.fill(
        "textarea[name=claim]", "PM Timor Leste meminta Jusuf Kalla ditangkap karena menghina agama Kristen"
    )
    page.select_option("select[name=rating]", "HOAKS")
    page.fill("textarea[name=summary]", SUMMARY)
    page.fill(
        "textarea[name=sources]",
        "https://turnbackhoax.id/articles/33654-salah-pm-timor-leste-tangkap-jk-dia-sudah-hina-agama-kristen",
    )
    page.click("button[value=submit]")
    page.wait_for_selector("text=Vonis dikirim untuk ditinjau.")
    assert page.locator("#approve").count() == 0
    page.wait_for_selector("#evidence h3")
    page.screenshot(path=str(shots / "ticket.png"), full_page=True)
    page.click("text=Keluar")

    # Warm the bot (NLU client, embedding model, indexes) without filing anything, so the timing
    # below is what a citizen waits for, not a cold start.
    from bot.core import BotCore, Envelope, default_services
    from bot.dialogue import Incoming
    from knowledge_base.matching import match_claim

    core = BotCore(default_services())
    core.process(Envelope("telegram", "tg-warmup-1", "777000111", Incoming(text="halo")))
    with session_scope() as s:
        assert match_claim(PARAPHRASE, session=s).decision != "auto"  # not answerable before publication

    # A second person, a reviewer, approves.
    _login(page, base, "yosef")
    page.goto(f"{base}/tickets/{seeded['main']}")
    page.click("#approve")
    page.wait_for_selector("text=Vonis terbit; 3 warga akan diberi tahu.")
    published_at = time.perf_counter()

    # The next citizen asking, in Kupang Malay, gets the verdict from the bot core.
    turn = core.process(Envelope("telegram", "tg-paraphrase-1", "777000111", Incoming(text=PARAPHRASE)))
    answered_s = time.perf_counter() - published_at
    text = "\n".join(r.text for r in turn.replies)
    assert "HOAKS" in text and "Jusuf Kalla" in text, text
    print(f"bot answered the paraphrase with the new verdict {answered_s:.2f} s after approval")
    assert answered_s < 5, answered_s  # "within a second" on a quiet machine; generous for a shared one

    with session_scope() as s:
        verdict = s.exec(select(Verdict).where(Verdict.claim_id == seeded["main"])).one()
        assert (verdict.status, verdict.reviewer_id, verdict.author_id) == (
            "published",
            seeded["yosef"],
            seeded["maria"],
        )
        rows = s.exec(select(Notification).where(Notification.verdict_id == verdict.id)).all()
        assert (
            len(rows) == 3
            and {n.kind for n in rows} == {"verdict"}
            and len({n.citizen_id for n in rows}) == 3
        )

    # The XSS ask renders as text.
    page.goto(f"{base}/tickets/{seeded['xss']}")
    shown = page.locator(".citizen-text").first.inner_text()
    assert '<script>document.title="pwned"</script>' in shown
    assert page.title() != "pwned" and not dialogs
    assert page.locator(".messages img").count() == 0

    # Comms reads the dashboard.
    page.click("text=Keluar")
    _login(page, base, "ana")
    page.goto(f"{base}/dashboard")
    assert page.locator("svg.chart").count() == 2
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    _login(mobile, base, "maria")
    mobile.screenshot(path=str(shots / "queue-phone.png"))
    phone.close()
    context.close()
