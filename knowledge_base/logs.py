"""Logging of the long-running processes (`run`, `scheduler`, `bot notify`): JSON lines, no personal data.

Every module logs through the standard `logging` module; this configures the root logger once per
process, with structlog's formatter rendering each record as one JSON object (`timestamp`, `level`,
`logger`, `event`, `process`, extras) or, on a terminal, as readable text (`LOG_FORMAT=auto|json|text`).
The code never logs chat ids, phone numbers or message text at INFO; as a second line of defence, long
digit runs (chat ids, phone numbers) are masked in every record above DEBUG.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from knowledge_base.settings import get_settings

# 9+ digits (chat ids, +62 numbers written together) or a 0/+62 number written in groups.
_PERSONAL_NUMBER = re.compile(
    r"(?<![\w.])[+-]?\d{9,}(?![\w.])|(?<![\w.])(?:\+62|0)\d{2,3}(?:[ -]\d{3,5}){2}(?!\w)"
)
_role = "kabashoax"


def mask_personal_numbers(text: str) -> str:
    return _PERSONAL_NUMBER.sub("[redacted]", text)


def _redact(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask personal numbers in the message, extras and traceback of records above DEBUG."""
    if event.get("level") == "debug":
        return event
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = mask_personal_numbers(value)
    return event


def _add_role(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
    event.setdefault("role", _role)
    event.setdefault("pid", os.getpid())
    return event


def configure(role: str, *, log_file: Path | None = None, level: str | None = None) -> None:
    """Configure this process's logging: `role` names it in every line (web, scheduler, notifier...).

    With `log_file`, lines go there instead of stderr (e.g. `kabashoax chat`, whose terminal is the
    conversation).
    """
    global _role
    _role = role
    settings = get_settings()
    stream_is_tty = log_file is None and sys.stderr.isatty()
    as_json = settings.log_format == "json" or (settings.log_format == "auto" and not stream_is_tty)
    tail: list[Any] = (
        [structlog.processors.format_exc_info, _redact, structlog.processors.JSONRenderer(ensure_ascii=False)]
        if as_json
        else [_redact, structlog.dev.ConsoleRenderer(colors=stream_is_tty)]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _add_role,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tail,
        ],
    )
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or settings.log_level).upper())
    # httpx logs every URL at INFO, and Telegram's URLs contain the bot token; the others are chatter.
    for name in ("httpx", "alembic", "faiss", "sentence_transformers", "bm25s"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
