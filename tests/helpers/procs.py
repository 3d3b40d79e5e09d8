"""Real `kabashoax` processes for the multi-process tests: a scratch PostgreSQL schema, processes
started with their own log file, waiting on HTTP conditions with a deadline, scraping `/metrics`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from knowledge_base.db import engine_for, migrate
from tests.helpers.db import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "scale-webhook-secret"


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A migrated private schema of the local PostgreSQL `test` database, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        migrate(url)
        yield url
    finally:
        engine_for(url).dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a test deployment: its own data dir and (empty) sources file, no Rasa."""
    sources = tmp_path / "sources.yaml"
    if not sources.exists():
        sources.write_text("sources: []\n")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KABASHOAX_DATA_DIR": str(tmp_path / "var"),
        "KABASHOAX_SOURCES_FILE": str(sources),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "LOG_FORMAT": "json",
        "RASA_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: the fallback classifier answers
        "RASA_TOKEN": "no-rasa",
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BOT_RATE_LIMIT": "1000/minute",
        "WHATSAPP_ACCESS_TOKEN": "",
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@dataclass
class Proc:
    """A `kabashoax ...` process whose output goes to `log`."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kabashoax.cli", *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait (SIGKILL if it will not go); the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, *procs: Proc, poll_s: float = 0.1
) -> None:
    """Until `condition()` is truthy; fails early (with the logs) when a watched process ends."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        for p in procs:
            assert p.alive(), f"{p.name} ended while waiting for {what}:\n{p.tail()}"
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in procs)
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{logs}")
        time.sleep(poll_s)


def healthy(base: str) -> bool:
    return httpx.get(f"{base}/health", timeout=2).status_code == 200


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base: str) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= set(lab))


def telegram_update(uid: int, chat: int, text: str, *, forwarded: bool = False) -> dict[str, Any]:
    """A private-chat Telegram update as the Bot API posts it to the webhook."""
    message: dict[str, Any] = {
        "message_id": uid,
        "date": int(time.time()),
        "chat": {"id": chat, "type": "private", "first_name": "Warga"},
        "from": {"id": chat, "is_bot": False, "first_name": "Warga"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if forwarded:
        message["forward_origin"] = {
            "type": "hidden_user",
            "date": int(time.time()),
            "sender_user_name": "RT",
        }
    return {"update_id": uid, "message": message}


def post_update(base: str, update: dict[str, Any], client: httpx.Client | None = None) -> int:
    """POST one update to a worker's Telegram webhook; the status (200 once processed and replied)."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    poster = client or httpx
    return poster.post(f"{base}/webhooks/telegram", json=update, headers=headers, timeout=120).status_code
