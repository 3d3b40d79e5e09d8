"""End to end, as a citizen meets it: the real PTB application long-polling a local fake Bot API,
the real knowledge base (imported turnbackhoax verdicts, Kupang passages, FAISS + BM25) and the real
NLU client (Rasa if it runs, else its fallback classifier), then the notifier delivering a verdict
the team published — once, also across a 429."""

from __future__ import annotations

import asyncio
import csv
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from bot import messages
from bot.core import BotCore, default_services
from bot.outbox import Notifier
from bot.telegram import TelegramNotifier, build_application
from knowledge_base.db import session_scope
from knowledge_base.models import Article, Claim, Notification, Passage, Source, Verdict
from knowledge_base.verdict_import import import_csv
from knowledge_base.verdicts import publish_verdict
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.bot import bot_settings
from tests.helpers.procs import telegram_update
from tests.helpers.wait import eventually

pytestmark = pytest.mark.slow

KUPANG = [
    (
        "Jadwal pembuangan sampah rumah tangga di Kota Kupang",
        "Dinas Lingkungan Hidup Kota Kupang mengingatkan warga agar membuang sampah rumah tangga ke tempat "
        "pembuangan sementara hanya pada pukul 18.00 sampai 06.00 WITA. Truk sampah mengangkut sampah setiap "
        "pagi mulai pukul 06.00 WITA.",
    ),
    (
        "PDAM hentikan sementara distribusi air di Oebobo",
        "PDAM Kota Kupang menghentikan sementara distribusi air bersih di Kelurahan Oebobo dan Fatululi "
        "selama perbaikan pipa induk pada Selasa dan Rabu. Warga diminta menampung air sebelumnya.",
    ),
]
UNKNOWN = (
    "Katanya besok semua sekolah di Kota Kupang diliburkan seminggu karena ada badai besar dari laut Sawu, "
    "sebarkan ke grup orang tua murid"
)


def seed_knowledge_base(tmp_path: Path) -> str:
    """40 real verdicts with their circulated messages, and two Kupang news passages."""
    with open("/work/shared/data/factchecks/turnbackhoax_dev.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    subset = tmp_path / "verdicts.csv"
    with subset.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:40])
    with session_scope() as s:
        report = import_csv(subset, session=s, with_messages=True)
        assert report.added == 40 and not report.errors
        source = Source(name="dlh-kupang", outlet="Pos Kupang", kind="media")
        s.add(source)
        s.flush()
        for n, (title, text) in enumerate(KUPANG):
            article = Article(
                source_id=source.id,
                guid=f"kupang-{n}",
                url=f"https://kupang.example/berita/{n}",
                title=title,
                text=text,
                published_at=datetime(2026, 3, 2 + n, 8, tzinfo=UTC),
                content_hash=f"kupang-{n}",
            )
            s.add(article)
            s.flush()
            s.add(Passage(article_id=article.id, text=text))
    return rows[5]["message"]  # "BERITA VIRAL POLRI MENEGASKAN …" as it circulated


async def said(fake: FakeTelegram, chat: int, count: int, timeout: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        texts = [m["text"] for m in fake.sent() if int(m["chat_id"]) == chat]
        if len(texts) >= count:
            return texts
        assert time.monotonic() < deadline, f"bot said only {texts}"
        await asyncio.sleep(0.1)


async def converse(fake_telegram: FakeTelegram, known_message: str, ani: int, budi: int) -> None:
    """Greeting → question with sources → known claim → unknown claim → ticket, joined by a second citizen."""
    fake_telegram.push_update(telegram_update(1, ani, "/start"))
    (greeting,) = await said(fake_telegram, ani, 1)
    assert greeting.startswith("Halo!")

    fake_telegram.push_update(telegram_update(2, ani, "jam buang sampah di kota kupang?"))
    answer = (await said(fake_telegram, ani, 2))[1]
    assert "Pos Kupang" in answer and "https://kupang.example/berita/0" in answer and "2026" in answer

    fake_telegram.push_update(telegram_update(30, ani, "Beta mau tau, air PDAM di Oebobo mati sampe kapan?"))
    kupang_malay = (await said(fake_telegram, ani, 3))[2]
    assert "https://kupang.example/berita/1" in kupang_malay, kupang_malay

    fake_telegram.push_update(telegram_update(31, ani, known_message, forwarded=True))
    verdict = (await said(fake_telegram, ani, 4))[3]
    assert "Hasil cek fakta: SALAH" in verdict and "turnbackhoax.id" in verdict

    fake_telegram.push_update(telegram_update(32, ani, UNKNOWN, forwarded=True))
    assert (await said(fake_telegram, ani, 5))[4] == messages.ticket(1)
    fake_telegram.push_update(telegram_update(33, budi, "Diteruskan: " + UNKNOWN, forwarded=True))
    assert (await said(fake_telegram, budi, 1))[0] == messages.ticket(2)


async def test_citizen_journey_over_real_telegram_client(
    app_env: Path, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    known_message = seed_knowledge_base(tmp_path)
    settings = bot_settings(TELEGRAM_API_BASE_URL=fake_telegram.base_url, BOT_NOTIFY_BACKOFF_BASE_S=0.5)
    core = BotCore(default_services(), settings)
    application = build_application(settings, core, polling=True)
    ani, budi = 5001, 5002
    async with application:
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        await application.start()
        try:
            await converse(fake_telegram, known_message, ani, budi)
        finally:
            await application.updater.stop()
            await application.stop()

    with session_scope() as s:
        claim = s.exec(select(Claim).where(Claim.status == "new")).one()
        assert claim.ask_count == 2
        v = Verdict(
            claim="Sekolah di Kota Kupang diliburkan seminggu karena badai",
            rating="HOAKS",
            summary="Dinas Pendidikan Kota Kupang tidak meliburkan sekolah; BMKG tidak mencatat badai.",
            url="https://kupang.example/cek/sekolah",
            status="in_review",
            origin="console",
            claim_id=claim.id,
        )
        s.add(v)
        s.flush()
        assert publish_verdict(v.id, session=s) == 2

    fake_telegram.fail_429, fake_telegram.retry_after = 1, 1
    notifier = Notifier({"telegram": TelegramNotifier(application.bot)}, settings)
    await application.bot.initialize()

    def all_sent() -> bool:  # then no row is left that could be sent a second time
        with session_scope() as s:
            rows = s.exec(select(Notification.status).where(Notification.verdict_id == v.id)).all()
        return len(rows) == 2 and set(rows) == {"sent"}

    await eventually(notifier.run_once, all_sent, what="both notifications to be sent")
    await notifier.run_once()
    notices = [m for m in fake_telegram.sent() if "Dinas Pendidikan" in m["text"]]
    assert sorted(int(m["chat_id"]) for m in notices) == [ani, budi]
    assert [c.method for c in fake_telegram.calls].count("sendMessage429") == 1
    with session_scope() as s:
        rows = s.exec(select(Notification).where(Notification.verdict_id == v.id)).all()
        assert {(r.status, r.kind) for r in rows} == {("sent", "verdict")}
