"""The notifier as its own process (`python -m bot notify`) on a database the test shares with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, select

from knowledge_base.db import engine_for
from knowledge_base.models import Notification
from tests.bot.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]


def statuses(url: str) -> list[str]:
    """Every outbox row's status, in id order, read with a fresh session."""
    with Session(engine_for(url)) as s:
        return [n.status for n in s.exec(select(Notification).order_by(Notification.id))]


def start_notifier(url: str, fake: FakeTelegram, tmp_path: Path, **extra: str) -> subprocess.Popen[bytes]:
    """A notifier process sending to the fake Bot API: short leases, small batches, one send at a time
    unless `extra` (more environment) says otherwise."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KABASHOAX_DATA_DIR": str(tmp_path / "var"),
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "WHATSAPP_ACCESS_TOKEN": "",
        "BOT_NOTIFY_LEASE_S": "2",
        "BOT_NOTIFY_POLL_S": "0.2",
        "BOT_NOTIFY_BATCH": "5",
        "BOT_NOTIFY_CONCURRENCY": "1",
        "OMP_NUM_THREADS": "1",
        **extra,
    }
    return subprocess.Popen([sys.executable, "-m", "bot", "notify"], cwd=ROOT, env=env)
