"""Several processes on one PostgreSQL database, as deployed: two web workers (`kabashoax web`, each on
its own port like two containers, so a test can choose which one a request reaches), two notifiers
(`kabashoax bot notify`) and a scheduler (`kabashoax scheduler`).

- A verdict published through one worker's console (staff login, four-eyes review) is served by the
  other worker on the very next message, and stops being served once withdrawn in the database.
- 1,000 queued notifications are each sent exactly once by two notifiers while one of them is killed
  with SIGKILL in the middle of a batch (each notifier talks to its own fake Bot API; together they
  count every message).
- A feed served over HTTP changes and the new item is answered by both workers with no command run.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from fact_team_console.passwords import hash_password
from knowledge_base.db import engine_for
from knowledge_base.models import Article, Citizen, Claim, Notification, Passage, Source, StaffUser, Verdict
from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.procs import (
    Proc,
    free_port,
    healthy,
    post_update,
    scratch_schema,
    service_env,
    telegram_update,
    wait_for,
)
from tests.test_feeds import FeedServer, item, respond, rss

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "Kupang-fakta-2026"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CHAIN = (
    "Sebarkan! Air PDAM Kota Kupang mulai malam ini dicampur racun tikus oleh orang tak dikenal, "
    "jangan diminum dan jangan dipakai masak"
)
SUMMARY = "PDAM Kota Kupang memeriksa air setiap hari; tidak ada racun. Pesan ini hoaks."


@pytest.fixture
def db() -> Iterator[str]:
    with scratch_schema() as url:
        yield url


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


def web_worker(name: str, env: dict[str, str], tmp_path: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(name, ["web", "--port", str(port)], env, tmp_path / f"{name}.log").start()
    return proc, f"http://127.0.0.1:{port}"


def replies_to(fake: FakeTelegram, chat: int) -> list[str]:
    return [str(m["text"]) for m in fake.sent() if int(m["chat_id"]) == chat]


def forward(base: str, fake: FakeTelegram, uid: int, chat: int, text: str) -> str:
    """A citizen forwards `text` through this worker's webhook; the bot's reply (sent before 200)."""
    assert post_update(base, telegram_update(uid, chat, text, forwarded=True)) == 200
    replies = replies_to(fake, chat)
    assert replies, f"no reply to chat {chat}"
    return replies[-1]


def login(client: httpx.Client, username: str) -> None:
    token = CSRF_RE.search(client.get("/login").text)
    assert token
    data = {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/login", data=data).status_code == 303


def csrf(page: str) -> str:
    token = CSRF_RE.search(page)
    assert token, page[:500]
    return token.group(1)


def test_a_verdict_published_through_one_worker_is_served_by_the_other_at_once(
    db: str, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    with Session(engine_for(db)) as s:
        digest = hash_password(PASSWORD)
        s.add_all(
            [
                StaffUser(username="cek1", role="checker", password_hash=digest),
                StaffUser(username="tinjau1", role="reviewer", password_hash=digest),
            ]
        )
        s.commit()
    env = service_env(
        tmp_path, db, TELEGRAM_BOT_TOKEN=fake_telegram.token, TELEGRAM_API_BASE_URL=fake_telegram.base_url
    )
    console, console_url = web_worker("worker-a", env, tmp_path)
    bot, bot_url = web_worker("worker-b", env, tmp_path)
    try:
        wait_for(lambda: healthy(console_url) and healthy(bot_url), 240, "both workers", console, bot)

        # A citizen forwards the chain message to worker B: unknown, so it becomes a ticket.
        first = forward(bot_url, fake_telegram, 1, 5551000001, CHAIN)
        assert SUMMARY not in first
        with Session(engine_for(db)) as s:
            claim = s.exec(select(Claim)).one()

        # The fact team works on worker A: a checker drafts and submits, a reviewer approves.
        with httpx.Client(base_url=console_url, follow_redirects=False, timeout=60) as checker:
            login(checker, "cek1")
            page = checker.get(f"/tickets/{claim.id}").text
            draft = {
                "csrf_token": csrf(page),
                "claim": "Air PDAM Kota Kupang dicampur racun tikus",
                "rating": "HOAKS",
                "summary": SUMMARY,
                "sources": "https://kupangkota.go.id/berita/pdam-air-aman",
                "action": "submit",
            }
            assert checker.post(f"/tickets/{claim.id}/verdict", data=draft).status_code == 303
        with httpx.Client(base_url=console_url, follow_redirects=False, timeout=60) as reviewer:
            login(reviewer, "tinjau1")
            page = reviewer.get(f"/tickets/{claim.id}").text
            approve = re.search(r'action="(/verdicts/\d+)/approve"', page)
            seen = re.search(r'name="seen" value="([^"]+)"', page)
            assert approve and seen, page[:2000]
            response = reviewer.post(
                f"{approve.group(1)}/approve", data={"csrf_token": csrf(page), "seen": seen.group(1)}
            )
            published_at = time.monotonic()
            assert response.status_code == 303
        with Session(engine_for(db)) as s:
            verdict = s.exec(select(Verdict)).one()
            assert verdict.status == "published"

        # The next citizen forwarding it to worker B gets the verdict: no wait, no retry.
        answer = forward(bot_url, fake_telegram, 2, 5551000002, CHAIN)
        print(
            f"verdict approved on worker A -> answered by worker B in {time.monotonic() - published_at:.2f} s"
        )
        assert SUMMARY in answer and "HOAKS" in answer
        assert SUMMARY in forward(console_url, fake_telegram, 3, 5551000003, CHAIN)  # and by A itself

        # Withdrawn by a change straight in the database (another process): served by neither.
        with engine_for(db).begin() as conn:
            conn.execute(sa.update(Verdict).where(col(Verdict.id) == verdict.id).values(status="withdrawn"))
        assert SUMMARY not in forward(bot_url, fake_telegram, 4, 5551000004, CHAIN)
        assert SUMMARY not in forward(console_url, fake_telegram, 5, 5551000005, CHAIN)
    finally:
        for proc in (console, bot):
            proc.stop()


def seed_outbox(db: str, n: int) -> list[int]:
    """A published verdict and `n` citizens who asked, each with a pending notification; chat ids."""
    chats = [7_000_000_000 + i for i in range(n)]
    engine = engine_for(db)
    with Session(engine) as s:
        verdict = Verdict(
            claim="Air PDAM Kupang beracun", rating="HOAKS", summary=SUMMARY, status="published"
        )
        s.add(verdict)
        s.commit()
        verdict_id = verdict.id
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Citizen),
            [{"channel": "telegram", "pseudonym": f"warga-{c}", "address": str(c)} for c in chats],
        )
        ids = dict(conn.execute(sa.select(Citizen.address, Citizen.id)).all())  # type: ignore[call-overload]
        conn.execute(
            sa.insert(Notification),
            [
                {
                    "dedupe_key": f"verdict:{verdict_id}:v1:citizen:{ids[str(c)]}",
                    "citizen_id": ids[str(c)],
                    "channel": "telegram",
                    "kind": "verdict",
                    "verdict_id": verdict_id,
                }
                for c in chats
            ],
        )
    return chats


def outbox(db: str) -> Counter[str]:
    with Session(engine_for(db)) as s:
        return Counter(s.exec(select(Notification.status)).all())


def test_two_notifiers_send_each_of_1000_notifications_once_while_one_is_killed_mid_batch(
    db: str, tmp_path: Path
) -> None:
    doomed_api, survivor_api = FakeTelegram().start(), FakeTelegram().start()
    doomed_api.hang_after = 40  # from its 41st on, no sendMessage returns: that notifier is stuck mid-batch
    settings = {"BOT_NOTIFY_LEASE_S": "8", "BOT_NOTIFY_POLL_S": "0.2", "BOT_NOTIFY_BATCH": "20"}
    notifiers = [
        Proc(
            name,
            ["bot", "notify"],
            service_env(
                tmp_path, db, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_BASE_URL=api.base_url, **settings
            ),
            tmp_path / f"{name}.log",
        ).start()
        for name, api in (("doomed", doomed_api), ("survivor", survivor_api))
    ]
    doomed, survivor = notifiers
    try:
        for proc in notifiers:
            wait_for(lambda p=proc: "notifier running" in p.tail(), 120, f"{proc.name} to start", proc)
        chats = seed_outbox(db, 1000)

        wait_for(lambda: doomed_api.hanging >= 1, 120, "the doomed notifier to hang mid-batch", *notifiers)
        doomed.process.kill()  # type: ignore[union-attr]  # SIGKILL: no clean-up of any kind
        doomed.process.wait(10)  # type: ignore[union-attr]
        with Session(engine_for(db)) as s:  # its batch: leased, not sent, not lost
            held = s.exec(
                select(Notification).where(
                    col(Notification.status) == "pending", col(Notification.locked_until).is_not(None)
                )
            ).all()
        assert held, "the killed notifier held no rows"

        wait_for(lambda: outbox(db) == Counter({"sent": 1000}), 120, "every notification sent", survivor)
    finally:
        for proc in notifiers:
            proc.stop(30)  # once stopped, no late duplicate can arrive
        doomed_api.stop()
        survivor_api.stop()
    delivered = Counter(int(m["chat_id"]) for api in (doomed_api, survivor_api) for m in api.sent())
    assert sorted(delivered) == chats and set(delivered.values()) == {1}  # each exactly once
    assert len(doomed_api.sent()) == 40 and len(survivor_api.sent()) == 960  # both really worked


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def embedded(db: str, url: str) -> bool:
    with Session(engine_for(db)) as s:
        article = s.exec(select(Article).where(Article.url == url)).first()
        if article is None:
            return False
        vectors = s.exec(select(Passage.embedding).where(Passage.article_id == article.id)).all()
        return bool(vectors) and all(v is not None for v in vectors)


def asked(base: str, fake: FakeTelegram, uid: int, chat: int, question: str) -> str:
    assert post_update(base, telegram_update(uid, chat, f"/tanya {question}")) == 200
    return replies_to(fake, chat)[-1]


def test_a_changed_feed_is_answered_by_both_workers_without_any_command(
    db: str, tmp_path: Path, feeds: FeedServer, fake_telegram: FakeTelegram
) -> None:
    water = item(
        "1",
        "https://kota.example.id/air",
        "PDAM Kupang: air mengalir normal di Oebobo",
        "Pasokan air bersih PDAM di Kelurahan Oebobo kembali normal sejak Senin pagi.",
    )
    rubbish = item(
        "2",
        "https://kota.example.id/sampah",
        "Jadwal angkut sampah Kelapa Lima berubah",
        "Truk sampah Dinas Lingkungan Hidup kini mengangkut sampah di Kelapa Lima setiap Selasa "
        "dan Jumat pukul enam pagi.",
    )
    feed = {"Content-Type": "application/rss+xml"}
    feeds.routes["/kota.xml"] = respond(200, rss(water), feed)
    with Session(engine_for(db)) as s:
        # Interval 0 (the CLI's minimum is 5 minutes): due at every scheduler tick, so the test
        # does not wait out a real interval to see the next poll.
        s.add(
            Source(
                name="kota", outlet="Pemkot Kupang", feed_url=feeds.url("/kota.xml"), poll_interval_minutes=0
            )
        )
        s.commit()
    env = service_env(
        tmp_path,
        db,
        TELEGRAM_BOT_TOKEN=fake_telegram.token,
        TELEGRAM_API_BASE_URL=fake_telegram.base_url,
        SCHEDULER_CHECK_S="0.3",
        SCHEDULER_FEED_TICK_S="1",
    )
    scheduler = Proc("scheduler", ["scheduler", "--no-sync"], env, tmp_path / "scheduler.log").start()
    a, a_url = web_worker("worker-a", env, tmp_path)
    b, b_url = web_worker("worker-b", env, tmp_path)
    procs = (scheduler, a, b)
    question = "kapan truk sampah angkut sampah di Kelapa Lima?"
    try:
        wait_for(lambda: embedded(db, "https://kota.example.id/air"), 240, "the first item", *procs)
        wait_for(lambda: healthy(a_url) and healthy(b_url), 240, "both workers", *procs)
        # Both workers answer from the index as it is (and so hold it in their caches).
        assert "https://kota.example.id/air" in asked(
            a_url, fake_telegram, 1, 5552000001, "air PDAM di Oebobo normal?"
        )
        assert "https://kota.example.id/sampah" not in asked(a_url, fake_telegram, 2, 5552000001, question)
        assert "https://kota.example.id/sampah" not in asked(b_url, fake_telegram, 3, 5552000002, question)

        feeds.routes["/kota.xml"] = respond(200, rss(water, rubbish), feed)
        wait_for(lambda: embedded(db, "https://kota.example.id/sampah"), 120, "the new item", *procs)
        # Nobody ran a command: each worker's next search finds what the scheduler committed.
        assert "https://kota.example.id/sampah" in asked(a_url, fake_telegram, 4, 5552000001, question)
        assert "https://kota.example.id/sampah" in asked(b_url, fake_telegram, 5, 5552000002, question)
    finally:
        for proc in procs:
            proc.stop()
