"""Webhook load benchmark: ≥10,000 Telegram updates through POST /webhooks/telegram, end to end.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_webhook [--messages 10000] [--nlu both]

Each update goes through the real route (secret check, PTB `Update.de_json`), the core (persist,
NLU, knowledge base, dialogue, store replies) and the real PTB client sending the reply to a local
fake Bot API on 127.0.0.1. The knowledge base is real: 40 imported turnbackhoax verdicts with their
circulated messages and a few Kupang passages, in a fresh SQLite file. Traffic mix per 100 updates:
30 small talk, 15 commands, 25 city questions, 15 forwarded known hoaxes, 15 forwarded new claims
(which become or join tickets), from 2,000 chats. Latency is per request as the webhook caller sees it.
With `--nlu rasa`/`both`, Rasa is trained (if needed) and started from the nlu part's virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from tests.helpers.procs import telegram_update  # noqa: E402

SHARED = Path(
    os.environ.get("KABASHOAX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
SECRET = "bench-secret"
KELURAHAN = [
    "Oebobo",
    "Fatululi",
    "Oesapa",
    "Kayu Putih",
    "Liliba",
    "Naikoten",
    "Bakunase",
    "Oepura",
    "Sikumana",
]
SMALL_TALK = ["halo", "selamat pagi kaka", "makasih banyak", "terima kasih e", "pagi bot", "hai"]
COMMANDS = ["/start", "/help", "/langganan", "/berhenti", "/cek", "/tanya"]
QUESTIONS = [
    "jam buang sampah di {k}?",
    "air PDAM di {k} mati su 3 hari, sampe kapan?",
    "kapan truk sampah lewat di {k}",
    "beta mau tau jadwal air PDAM di {k}",
    "pemadaman listrik di {k} kapan selesai?",
]
NEW_CLAIMS = [
    "Katanya besok semua sekolah di Kota Kupang diliburkan seminggu karena badai besar dari laut Sawu",
    "Info dari grup RT: air PDAM di {k} dicampur racun tikus mulai malam ini, jangan diminum",
    "Sebarkan! Ada penculikan anak pakai mobil putih di sekitar {k}, orang tua hati-hati",
    "Pemkot Kupang bagi bantuan tunai 2 juta per KK, daftar lewat link WA ini sebelum besok",
    "Besok listrik padam total satu Kota Kupang dari pagi sampai malam karena perbaikan gardu",
]
PASSAGES = [
    (
        "Jadwal pembuangan sampah rumah tangga di Kota Kupang",
        "Dinas Lingkungan Hidup Kota Kupang mengingatkan warga agar membuang sampah rumah tangga ke tempat "
        "pembuangan sementara hanya pada pukul 18.00 sampai 06.00 WITA. Truk sampah mengangkut sampah "
        "setiap pagi mulai pukul 06.00 WITA di semua kelurahan.",
    ),
    (
        "PDAM hentikan sementara distribusi air di Oebobo",
        "PDAM Kota Kupang menghentikan sementara distribusi air bersih di Kelurahan Oebobo dan Fatululi "
        "selama perbaikan pipa induk pada Selasa dan Rabu. Warga diminta menampung air sebelumnya.",
    ),
    (
        "Pemadaman listrik bergilir di Kupang",
        "PLN mengumumkan pemadaman listrik bergilir di beberapa kecamatan Kota Kupang karena gangguan "
        "pada pembangkit, dijadwalkan dua jam per wilayah.",
    ),
]


def seed(data_dir: Path) -> list[str]:
    """A fresh migrated database with real verdicts and Kupang passages; returns circulated messages."""
    from knowledge_base.db import migrate, session_scope
    from knowledge_base.models import Article, Passage, Source
    from knowledge_base.verdict_import import import_csv

    migrate()
    with (SHARED / "factchecks" / "turnbackhoax_dev.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:40]
    subset = data_dir / "verdicts.csv"
    with subset.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with session_scope() as s:
        import_csv(subset, session=s, with_messages=True)
        source = Source(name="bench-kupang", outlet="Pos Kupang", kind="media")
        s.add(source)
        s.flush()
        for n, (title, text) in enumerate(PASSAGES):
            url = f"https://kupang.example/berita/{n}"
            article = Article(
                source_id=source.id, guid=url, url=url, title=title, text=text, content_hash=url,
                published_at=datetime(2026, 3, 2 + n, 8, tzinfo=UTC),
            )  # fmt: skip
            s.add(article)
            s.flush()
            s.add(Passage(article_id=article.id, text=text))
    return [r["message"] for r in rows if len(r["message"].split()) >= 8]


def traffic(n: int, known: list[str], rng: random.Random) -> list[tuple[str, dict]]:
    """(kind, update) pairs in the documented mix."""
    out = []
    for i in range(n):
        r = i % 100
        k = rng.choice(KELURAHAN)
        forwarded = False
        if r < 30:
            kind, text = "small_talk", rng.choice(SMALL_TALK)
        elif r < 45:
            kind, text = "command", rng.choice(COMMANDS)
        elif r < 70:
            kind, text = "question", rng.choice(QUESTIONS).format(k=k)
        elif r < 85:
            kind, text, forwarded = "known_hoax", rng.choice(known), True
        else:
            kind, text, forwarded = "new_claim", rng.choice(NEW_CLAIMS).format(k=k), True
        chat = 10_000 + rng.randrange(2000)
        out.append((kind, telegram_update(1_000_000 + i, chat, text, forwarded=forwarded)))
    rng.shuffle(out)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    mode: str, updates: list[tuple[str, dict]], concurrency: int, fake_url: str, token: str
) -> dict:
    from telegram import Bot

    import bot.web
    from bot.core import BotCore, Services
    from bot.runtime import get_core
    from bot.settings import BotSettings
    from bot.telegram import TelegramChannel
    from knowledge_base.answer import answer_question
    from knowledge_base.matching import match_claim
    from knowledge_base.tickets import report_claim
    from nlu.client import NluClient

    nlu = NluClient(use_rasa=mode == "rasa")
    settings = BotSettings(
        TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=fake_url, TELEGRAM_WEBHOOK_SECRET=SECRET,
        BOT_RATE_LIMIT="1000/minute",
    )  # fmt: skip
    services = Services(parse=nlu.parse_sync, answer=answer_question, match=match_claim, report=report_claim)
    core = BotCore(services, settings)
    tg = Bot(token, base_url=fake_url)
    await tg.initialize()
    channel = TelegramChannel(tg, core)

    async def getter() -> TelegramChannel:
        return channel

    app = FastAPI()
    app.include_router(bot.web.router)
    app.dependency_overrides[get_core] = lambda: core
    app.dependency_overrides[bot.web.telegram_provider] = lambda: getter
    os.environ["TELEGRAM_WEBHOOK_SECRET"] = SECRET  # the route reads these two from the environment
    os.environ["TELEGRAM_BOT_TOKEN"] = token
    from bot.settings import get_settings

    get_settings.cache_clear()

    # Warm-up (model loads, index build) is not part of the measurement.
    core.process(_warm("jam buang sampah di Oebobo?"))
    core.process(_warm(NEW_CLAIMS[0], forwarded=True))

    latencies: dict[str, list[float]] = defaultdict(list)
    sources: dict[str, int] = defaultdict(int)
    errors = 0
    queue: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
    for item in updates:
        queue.put_nowait(item)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                kind, update = queue.get_nowait()
                t0 = time.perf_counter()
                resp = await client.post("/webhooks/telegram", json=update, headers=headers)
                latencies[kind].append(time.perf_counter() - t0)
                if resp.status_code != 200:
                    errors += 1
                    if errors == 1:
                        print(f"first failure: HTTP {resp.status_code} {resp.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    await tg.shutdown()
    from sqlmodel import func, select

    from knowledge_base.db import session_scope
    from knowledge_base.models import InboundMessage

    with session_scope() as s:
        for src, count in s.exec(
            select(InboundMessage.nlu_source, func.count())
            .where(InboundMessage.external_id.startswith("u1"))
            .group_by(InboundMessage.nlu_source)
        ).all():
            sources[str(src)] = count
    every = [x for xs in latencies.values() for x in xs]
    return {
        "mode": mode,
        "messages": len(every),
        "errors": errors,
        "seconds": elapsed,
        "per_s": len(every) / elapsed,
        "p50_ms": percentile(every, 0.5) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
        "by_kind": {
            k: (percentile(v, 0.5) * 1000, percentile(v, 0.99) * 1000, len(v)) for k, v in latencies.items()
        },
        "nlu_sources": dict(sources),
    }


def _warm(text: str, *, forwarded: bool = False):  # type: ignore[no-untyped-def]
    from bot.core import Envelope
    from bot.dialogue import Incoming

    return Envelope("telegram", f"warm-{random.random()}", "1", Incoming(text=text, forwarded=forwarded))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--nlu", choices=["fallback", "rasa", "both"], default="both")
    args = parser.parse_args()

    from tests.bot.fake_telegram import FakeTelegram

    modes = ["fallback", "rasa"] if args.nlu == "both" else [args.nlu]
    results = []
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
            os.environ["KABASHOAX_DATA_DIR"] = str(Path(tmp) / "var")
            os.environ.pop("DATABASE_URL", None)
            from knowledge_base.settings import get_settings as kb_settings
            from nlu.settings import get_settings as nlu_settings

            kb_settings.cache_clear()
            nlu_settings.cache_clear()
            rasa = None
            if mode == "rasa":
                from nlu.rasa_service import free_port, serve, train

                port = free_port()
                os.environ["RASA_URL"] = f"http://127.0.0.1:{port}"
                # A generated token can start with "-", which `rasa run --auth-token` takes for an option.
                os.environ.setdefault("RASA_TOKEN", "bench-" + uuid.uuid4().hex)
                nlu_settings.cache_clear()
                rasa = serve(train(), port=port)
                print(f"rasa ready in {rasa.started_in_s:.1f} s on {rasa.url}")
            known = seed(Path(tmp))
            fake = FakeTelegram().start()
            try:
                updates = traffic(args.messages, known, random.Random(7))
                results.append(asyncio.run(run(mode, updates, args.concurrency, fake.base_url, fake.token)))
                replies = len(fake.sent())
            finally:
                fake.stop()
                if rasa is not None:
                    rasa.stop()
            results[-1]["replies_sent"] = replies
            r = results[-1]
            print(
                f"[{mode}] {r['messages']} messages in {r['seconds']:.1f} s: {r['per_s']:.1f} msg/s, "
                f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, errors {r['errors']}, "
                f"replies sent {replies}, NLU sources {r['nlu_sources']}"
            )
            for kind, (p50, p99, count) in sorted(r["by_kind"].items()):
                print(f"    {kind:<11} n={count:<5} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    print("\n| NLU | messages | msg/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['messages']} | {r['per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']} |"
        )


if __name__ == "__main__":
    main()
