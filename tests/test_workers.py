"""`kabashoax run --workers N` as an operator runs it: refused on SQLite; on PostgreSQL N web workers on
one port, a notifier and a scheduler under one supervisor, one `/metrics` scrape adding up every
worker while citizens write through the real webhooks, a killed worker restarted with its counters
kept, logs without chat ids or phone numbers, and SIGTERM stopping everything."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bot.fake_telegram import FakeTelegram
from tests.helpers.procs import (
    ROOT,
    Proc,
    free_port,
    healthy,
    post_update,
    scrape,
    scratch_schema,
    service_env,
    telegram_update,
    total,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WA_SECRET = "scale-wa-app-secret"
WA_PHONE = "6281234567890"  # the citizen's WhatsApp number: must never reach a log line
CHATS = [5550001001, 5550001002, 5550001003, 5550001004]  # Telegram chat ids (10 digits, like real ones)
BLOCKED = 5550009999  # a citizen who blocked the bot: the reply fails with 403
WHATSAPP = Path("/work/shared/data/whatsapp")


def test_several_workers_are_refused_on_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "KABASHOAX_DATA_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL", None)
    for command in (["run", "--workers", "2", "--no-rasa"], ["web", "--workers", "2"]):
        out = subprocess.run(
            [sys.executable, "-m", "kabashoax.cli", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 2, out.stderr
        assert "needs PostgreSQL" in out.stderr and "--workers 1" in out.stderr
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "var" / "kabashoax.sqlite3").exists()  # refused before touching anything


class FakeGraph:
    """The WhatsApp Cloud API's messages endpoint on 127.0.0.1: accepts every message, records it."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                graph.posts.append(json.loads(body))
                answer = json.dumps({"messages": [{"id": f"wamid.out{len(graph.posts)}"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v21.0"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    server = FakeGraph()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


def whatsapp_body(name: str, *, message_id: str = "", text: str = "") -> bytes:
    """A real Cloud API payload from ../shared/data/whatsapp, from our test citizen's number."""
    data = json.loads((WHATSAPP / name).read_text())
    value = data["entry"][0]["changes"][0]["value"]
    for contact in value.get("contacts", []):
        contact["wa_id"] = WA_PHONE
    for message in value.get("messages", []):
        message["from"], message["id"], message["text"] = WA_PHONE, message_id, {"body": text}
    for status in value.get("statuses", []):
        status["recipient_id"] = WA_PHONE
    return json.dumps(data).encode()


def post_whatsapp(base: str, body: bytes) -> int:
    signature = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    return httpx.post(f"{base}/webhooks/whatsapp", content=body, headers=headers, timeout=120).status_code


def conversation(chat: int, first_uid: int) -> list[dict[str, Any]]:
    """What one citizen sends: small talk and a question (classified by the NLU), a question by
    command, and a forwarded chain message (matched, then filed as a ticket)."""
    texts = [
        ("halo kaka", False),
        ("kapan kantor lurah Oebobo buka?", False),
        ("/tanya jam buang sampah di Oebobo?", False),
        ("Katanya besok semua sekolah di Kota Kupang diliburkan seminggu karena badai dari laut Sawu", True),
    ]
    return [telegram_update(first_uid + i, chat, text, forwarded=fwd) for i, (text, fwd) in enumerate(texts)]


def test_run_with_two_workers_serves_one_port_and_one_scrape_shows_every_process(
    tmp_path: Path, fake_telegram: FakeTelegram, graph: FakeGraph
) -> None:
    fake_telegram.blocked_chats.add(BLOCKED)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with scratch_schema() as db:
        env = service_env(
            tmp_path,
            db,
            TELEGRAM_BOT_TOKEN=fake_telegram.token,
            TELEGRAM_API_BASE_URL=fake_telegram.base_url,
            WHATSAPP_APP_SECRET=WA_SECRET,
            WHATSAPP_VERIFY_TOKEN="verify-me",
            WHATSAPP_ACCESS_TOKEN="wa-token",
            WHATSAPP_PHONE_NUMBER_ID="1122334455667",
            WHATSAPP_API_BASE_URL=graph.base_url,
            NLU_BREAKER_FAILURES="1",  # Rasa is not running: the first failed call opens the breaker
            NLU_BREAKER_COOLDOWN_S="600",
        )
        args = ["run", "--workers", "2", "--port", str(port), "--no-rasa", "--no-ingest", "--no-poll"]
        run = Proc("run", args, env, tmp_path / "run.log").start()
        try:

            def every_process_reports() -> bool:
                processes = scrape(base)
                roles = ("web", "notifier", "scheduler")
                return [total(processes, "kabashoax_processes", role=r) for r in roles] == [2, 1, 1]

            wait_for(lambda: healthy(base), 240, "the web workers to answer", run)
            wait_for(every_process_reports, 120, "2 web workers, a notifier and a scheduler in /metrics", run)
            before = scrape(base)

            # Four citizens at once through the real Telegram webhook (each request on its own
            # connection, so both workers take some), one who blocked the bot, one on WhatsApp.
            updates = [u for n, chat in enumerate(CHATS) for u in conversation(chat, 1000 * (n + 1))]
            with ThreadPoolExecutor(max_workers=len(CHATS)) as pool:
                codes = list(pool.map(lambda u: post_update(base, u), updates))
            assert codes == [200] * len(updates)
            assert post_update(base, telegram_update(9000, BLOCKED, "halo")) == 500  # Telegram redelivers
            hello = whatsapp_body("wa_message_text.json", message_id="wamid.in1", text="halo")
            assert post_whatsapp(base, hello) == 200
            assert post_whatsapp(base, whatsapp_body("wa_status_failed.json")) == 200
            replies = {int(m["chat_id"]) for m in fake_telegram.sent()}
            assert set(CHATS) <= replies and len(graph.posts) == 1

            after = scrape(base)
            moved = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}

            def delta(name: str, **labels: str) -> float:
                return total(moved, name, **labels)

            n = len(updates)
            assert (
                delta("kabashoax_messages_received_total", channel="telegram") == n + 1
            )  # + the blocked one
            assert delta("kabashoax_messages_received_total", channel="whatsapp") == 1
            assert delta("kabashoax_messages_received_total", channel="telegram", intent="command") == len(
                CHATS
            )
            assert delta("kabashoax_message_handling_seconds_count", channel="telegram") == n + 1
            assert delta("kabashoax_messages_sent_total", channel="telegram") >= n
            assert delta("kabashoax_messages_sent_total", channel="whatsapp") >= 1
            assert delta("kabashoax_answers_total", found="false") >= len(CHATS)  # an empty knowledge base
            assert delta("kabashoax_match_decisions_total", decision="none") >= len(CHATS)  # -> tickets
            assert delta("kabashoax_delivery_failures_total", channel="telegram", cause="blocked") == 1
            assert (
                delta("kabashoax_delivery_failures_total", channel="whatsapp", cause="reported_failed") == 1
            )
            assert total(after, "kabashoax_nlu_breaker_open") == 1
            assert total(after, "kabashoax_nlu_parsed_total", source="fallback") >= 2 * len(CHATS)

            # A worker killed outright is restarted; the port kept answering and the counts survive it.
            workers = started_pids(run, "web-")
            assert len(workers) == 2
            os.kill(workers[0], 9)
            wait_for(lambda: len(started_pids(run, "web-")) == 3, 60, "the killed worker's restart", run)
            assert healthy(base)
            wait_for(every_process_reports, 120, "the restarted worker in /metrics", run)
            again = scrape(base)
            for key in ("kabashoax_messages_received_total", "kabashoax_answers_total"):
                assert total(again, key) == total(after, key)
        finally:
            status = run.stop(90)
        assert status == 0, run.tail()
        children = started_pids(run, "")
        assert len(children) == 5  # scheduler, notifier, two workers and the restarted one
        for pid in children:
            wait_for(lambda pid=pid: not pid_alive(pid), 30, f"child {pid} to end with run")

    # Nothing personal in any process's log: no chat id, no phone number (not even masked).
    log = run.log.read_text()
    assert {e.get("role") for e in run.events()} >= {"supervisor", "web", "notifier", "scheduler"}
    for personal in [*map(str, CHATS), str(BLOCKED), WA_PHONE, WA_PHONE[2:]]:
        assert personal not in log
    assert "[redacted]" not in log


def started_pids(run: Proc, prefix: str) -> list[int]:
    """Pids of the children the supervisor logged as started (`web-1 started (pid 123)`)."""
    return [
        int(str(e["event"]).split("(pid ")[1].rstrip(")"))
        for e in run.events()
        if e.get("role") == "supervisor"
        and str(e.get("event", "")).startswith(prefix)
        and " started (pid " in str(e.get("event", ""))
    ]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
