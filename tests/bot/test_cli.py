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
