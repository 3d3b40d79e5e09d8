"""`kabashoax chat` (here `python -m bot chat`, the same command without the other parts' CLIs):
a terminal conversation with the real core, buttons typed as #N."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import messages

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_terminal_chat_uses_the_same_core(app_env: Path) -> None:
    typed = "/start\n#1\nhoaks?\n/hapusdata\n#2\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "RASA_URL": "http://127.0.0.1:9"}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "chat"], input=typed, capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=300,
    ).stdout  # fmt: skip
    assert "Halo! Saya Kabas Hoaks" in out and "[#1] Cek kabar" in out
    assert messages.PROMPT_CLAIM in out  # the #1 button was pressed
    assert messages.CLAIM_TOO_SHORT in out
    assert messages.CONFIRM_DELETE.split(",")[0] in out and messages.CANCELLED in out


def test_set_webhook_registers_url_and_secret(fake_telegram) -> None:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": fake_telegram.token,
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": "s3cret",
    }
    url = "https://kabashoax.example/webhooks/telegram"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "set-webhook", url], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (call,) = [c for c in fake_telegram.calls if c.method == "setWebhook"]
    assert call.params["url"] == url and call.params["secret_token"] == "s3cret"
    assert "s3cret" not in done.stdout + done.stderr and fake_telegram.token not in done.stdout + done.stderr
