"""Webhook load against 1 and against 2 web workers on PostgreSQL, side by side.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_scale [--chats 100] [--messages 20] [--workers 1,2]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

For each worker count, a fresh private schema of the PostgreSQL database is seeded like
`bench.bench_webhook` (40 real turnbackhoax verdicts with their circulated messages, Kupang passages;
vectors stored, as the scheduler leaves them), then `kabashoax web --workers N` is started as an
operator would (real processes, one shared port) with the in-app NLU fallback (no Rasa) and the real
python-telegram-bot client replying to a fake Bot API in its own process. `--chats` simulated citizens
write at once, each sending `--messages` Telegram updates one after the other (waiting for each
answer, as a person does): small talk, commands, city questions, forwarded known hoaxes and new claims
(which become or join tickets). Latency is per webhook request as Telegram would see it (the reply is
sent before the webhook answers). Figures: messages/s, p50/p99, and the ratio of each run to the first.

On the 2-core development machine the workers, PostgreSQL, the fake Bot API and this load generator all
share the two cores, so a second worker can at best overlap one worker's waits (database round trips,
the reply's HTTP call) with the other's CPU work; do not expect 2x there.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the clone, else the machine's
os.environ.setdefault("KABASHOAX_SHARED_DATA", str(_SHARED if _SHARED.exists() else "/work/shared/data"))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.bench_webhook import COMMANDS, KELURAHAN, NEW_CLAIMS, QUESTIONS, SMALL_TALK, percentile, seed  # noqa: E402
from tests.helpers.procs import telegram_update  # noqa: E402

SECRET = "bench-scale-secret"
TOKEN = "123456:TEST-token"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    workers: int
    messages: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fake_bot_api(ports: Any) -> None:
    """The fake Bot API (tests/bot/fake_telegram.py) in a process of its own, until terminated."""
    import threading

    from tests.bot.fake_telegram import FakeTelegram

    ports.put(FakeTelegram(token=TOKEN).start().port)
    threading.Event().wait()


def chat_messages(chat: int, count: int, known: list[str], rng: random.Random, first_uid: int) -> list[dict]:
    """One citizen's messages in the bench_webhook mix (30 small talk, 15 commands, 25 questions,
    15 forwarded known hoaxes, 15 forwarded new claims per 100)."""
    out = []
    for i in range(count):
        r = rng.randrange(100)
        k = rng.choice(KELURAHAN)
        forwarded = False
        if r < 30:
            text = rng.choice(SMALL_TALK)
        elif r < 45:
            text = rng.choice(COMMANDS)
        elif r < 70:
            text = rng.choice(QUESTIONS).format(k=k)
        elif r < 85:
            text, forwarded = rng.choice(known), True
        else:
            text, forwarded = rng.choice(NEW_CLAIMS).format(k=k), True
        out.append(telegram_update(first_uid + i, chat, text, forwarded=forwarded))
    return out


async def drive(base: str, chats: list[list[dict]]) -> tuple[list[float], int, float]:
    """Every chat at once, each message after the previous one's answer; (latencies, errors, seconds)."""
    latencies: list[float] = []
    errors = 0
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    limits = httpx.Limits(max_connections=len(chats), max_keepalive_connections=len(chats))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=300) as client:

        async def citizen(updates: list[dict]) -> None:
            nonlocal errors
            for update in updates:
                t0 = time.perf_counter()
                try:
                    response = await client.post("/webhooks/telegram", json=update, headers=headers)
                    failure = "" if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.TransportError as exc:  # counted, as Telegram would redeliver it
                    failure = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                if failure:
                    errors += 1
                    print(f"failed after {latencies[-1]:.2f} s ({len(latencies)} sent): {failure}")

        started = time.perf_counter()
        await asyncio.gather(*(citizen(c) for c in chats))
        return latencies, errors, time.perf_counter() - started


def create_schema(postgres: str) -> tuple[str, str]:
    """A private schema of the PostgreSQL database; (its name, a URL whose search_path is it)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with sa.create_engine(postgres).begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    return schema, f"{postgres}?options=-csearch_path%3D{schema}"


def prepare(url: str, data_dir: Path) -> list[str]:
    """Seed the schema behind `url` with stored vectors; the circulated messages."""
    from knowledge_base import matching, verdict_corpus
    from knowledge_base.db import migrate, session_scope
    from knowledge_base.search import sync_passages
    from knowledge_base.settings import get_settings

    os.environ["DATABASE_URL"] = url
    os.environ["KABASHOAX_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    migrate(url)
    data_dir.mkdir(parents=True, exist_ok=True)
    known = seed(data_dir)
    with session_scope() as s:
        sync_passages(s)  # vectors on the rows, as the scheduler stores them
        matching.sync(s)
        verdict_corpus.release(s)
    return known


def drop(postgres: str, schema: str, url: str) -> None:
    from knowledge_base.db import engine_for

    engine_for(url).dispose()
    with sa.create_engine(postgres).begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def wait_ready(base: str, workers: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"kabashoax web ended:\n{log.read_text()[-3000:]}")
        try:
            body = httpx.get(f"{base}/metrics", timeout=5).text
            up = sum(
                s.value
                for f in text_string_to_metric_families(body)
                for s in f.samples
                if s.name == "kabashoax_processes" and s.labels.get("role") == "web"
            )
            if up == workers:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"workers not up in 600 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def run_once(workers: int, args: argparse.Namespace, fake_url: str) -> Result:
    schema, url = create_schema(args.postgres)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            return measure(workers, args, fake_url, url, Path(tmp))
    finally:
        drop(args.postgres, schema, url)


def measure(workers: int, args: argparse.Namespace, fake_url: str, url: str, tmp: Path) -> Result:
    """Seed, start `kabashoax web --workers N`, warm it up, then drive the chats."""
    data_dir = tmp / "var"
    known = prepare(url, data_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KABASHOAX_DATA_DIR": str(data_dir),
        # Both runs write their metrics the same way (prometheus-client's multiprocess files).
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": fake_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "BOT_RATE_LIMIT": "100000/minute",  # 20 messages a chat in a minute is the point here
        "RASA_URL": f"http://127.0.0.1:{free_port()}",  # no Rasa: the in-app fallback classifies
        "NLU_BREAKER_COOLDOWN_S": "3600",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "OMP_NUM_THREADS": "1",
    }
    (tmp / "metrics").mkdir()
    log = tmp / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kabashoax.cli", "web", "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, workers, proc, log)
        rng = random.Random(7)
        warm = [chat_messages(20_000 + n, 3, known, rng, 5_000_000 + 100 * n) for n in range(8 * workers)]
        asyncio.run(drive(base, warm))  # model loads, caches: not measured
        chats = [
            chat_messages(10_000 + n, args.messages, known, rng, 1_000_000 + 1000 * n)
            for n in range(args.chats)
        ]
        latencies, errors, seconds = asyncio.run(drive(base, chats))
    except BaseException:
        print(f"kabashoax web's log ends:\n{log.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return Result(workers, len(latencies), errors, seconds, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20, help="messages per chat")
    parser.add_argument(
        "--workers", default="1,2", help="worker counts to compare, the first is the baseline"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "KABASHOAX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    fake = ctx.Process(target=fake_bot_api, args=(ports,), daemon=True)
    fake.start()
    fake_url = f"http://127.0.0.1:{ports.get(timeout=120)}/bot"
    results = []
    try:
        for workers in counts:
            r = run_once(workers, args, fake_url)
            results.append(r)
            print(
                f"[{workers} worker(s)] {r.messages} messages in {r.seconds:.1f} s: {r.per_s:.1f} msg/s, "
                f"p50 {r.p(0.5):.0f} ms, p99 {r.p(0.99):.0f} ms, errors {r.errors}",
                flush=True,
            )
    finally:
        fake.terminate()
        fake.join(10)
    base = results[0]
    print(
        f"\n{args.chats} chats x {args.messages} messages, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print("| workers | messages | msg/s | p50 ms | p99 ms | errors | msg/s vs first | p50 vs first |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.workers} | {r.messages} | {r.per_s:.1f} | {r.p(0.5):.0f} | {r.p(0.99):.0f} | {r.errors} | "
            f"{r.per_s / base.per_s:.2f}x | {r.p(0.5) / base.p(0.5):.2f}x |"
        )


if __name__ == "__main__":
    main()
