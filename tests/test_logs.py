"""Service logs: JSON lines, personal numbers masked; `chat` keeps its terminal for the conversation."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge_base import logs
from knowledge_base.settings import get_settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    get_settings.cache_clear()


def test_json_lines_with_context_and_no_personal_numbers(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    get_settings.cache_clear()
    path = tmp_path / "service.log"
    logs.configure("notifier", log_file=path)
    log = logging.getLogger("bot.outbox")
    log.info("notification 7 sent to chat 987654321 (+6281234567890, 0812-3456-7890)", extra={"claim_id": 3})
    log.debug("raw chat 987654321")  # DEBUG may carry details; it is off in production
    try:
        raise RuntimeError("Telegram refused chat 987654321")
    except RuntimeError:
        log.exception("delivery failed")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2  # INFO is the default level
    first, failure = lines
    assert first["event"] == "notification 7 sent to chat [redacted] ([redacted], [redacted])"
    assert (first["level"], first["logger"], first["role"], first["claim_id"]) == (
        "info",
        "bot.outbox",
        "notifier",
        3,
    )
    assert first["timestamp"].endswith("Z") and first["pid"] == os.getpid()
    assert "987654321" not in path.read_text()
    assert "RuntimeError: Telegram refused chat [redacted]" in failure["exception"]


def test_library_chatter_stays_below_the_configured_level(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bm25s

    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    path = tmp_path / "service.log"
    logs.configure("web", log_file=path)
    bm25s.BM25().index([["air", "pdam"], ["jalan", "rusak"]], show_progress=False)  # logs at DEBUG
    logging.getLogger("bot.core").warning("kept")
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["kept"]


def test_numbers_that_are_not_personal_stay(tmp_path: Path, restore_logging: None) -> None:
    assert logs.mask_personal_numbers("12 passages in 3.14159265 s on 2026-12-02 14:05:09") == (
        "12 passages in 3.14159265 s on 2026-12-02 14:05:09"
    )


def test_chat_writes_its_log_lines_to_a_file_not_into_the_conversation(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KABASHOAX_DATA_DIR": str(tmp_path / "var"),
        "RASA_URL": "http://127.0.0.1:9",  # Rasa down: the client logs a warning per message
        "RASA_TOKEN": "t",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "kabashoax.cli", "chat"],
        input="halo\nbetul ko PDAM mau naik tarif?\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("bot> ") >= 2, out.stdout
    terminal = out.stdout + out.stderr
    assert "rasa_failed" not in terminal and "WARNING" not in terminal, terminal[-2000:]
    log_file = tmp_path / "var" / "logs" / "chat.log"
    assert "nlu.rasa_failed" in log_file.read_text()
