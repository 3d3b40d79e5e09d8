"""Importing past fact-checks from CSV: good rows become published verdicts, bad rows are reported by line.

Functions flush but never commit: the caller (CLI command, calibration) owns the transaction.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from sqlmodel import Session, col, select

from knowledge_base.models import Verdict, VerdictStatus
from knowledge_base.ratings import parse_rating
from knowledge_base.verdicts import add_text

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("claim", "rating")
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


class ImportFileError(ValueError):
    """The file cannot be imported at all (unreadable, or without the required columns)."""


@dataclass
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    """What an import did: rows added, rows already known (same URL), and bad rows by line number."""

    added: int = 0
    already_known: int = 0
    errors: list[RowError] = field(default_factory=list)
    verdict_ids: list[int] = field(default_factory=list)


def parse_date(value: str) -> datetime | None:
    """ISO date/datetime or day-first d/m/yyyy, as aware UTC; None for an empty cell."""
    value = (value or "").strip()
    if not value:
        return None
    day_first = _DAY_FIRST.match(value)
    try:
        if day_first:
            day, month, year = (int(g) for g in day_first.groups())
            parsed = datetime(year, month, day)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad date {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_url(value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or "." not in parsed.netloc or " " in value:
        raise ValueError(f"bad URL {value!r}")
    return value


def import_csv(path: Path, *, session: Session, with_messages: bool = False) -> ImportReport:
    """Import past fact-checks (`claim,rating,summary,url,published_at,source`; extra columns ignored).

    Good rows are kept and bad ones reported by line number; a row whose URL is already known adds
    nothing, so importing the same file twice is harmless. The `message` column is the text as it
    circulated: it is attached as a matching text only with `with_messages` (it is the evaluation query).
    """
    report = ImportReport()
    try:
        handle = path.open(newline="", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.DictReader(line.replace("\0", "") for line in handle)
        columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ImportFileError(f"{path.name}: missing column(s) {', '.join(missing)}")
        known_urls = set(session.exec(select(Verdict.url).where(col(Verdict.url).is_not(None))).all())
        line = reader.line_num + 1
        try:
            for raw in reader:
                start, line = line, reader.line_num + 1
                row = {(k or "").strip().lower(): (v or "") for k, v in raw.items() if isinstance(v, str)}
                try:
                    verdict = _verdict_from_row(row)
                except ValueError as exc:
                    report.errors.append(RowError(start, str(exc)))
                    continue
                if verdict.url is not None and verdict.url in known_urls:
                    report.already_known += 1
                    continue
                session.add(verdict)
                session.flush()
                add_text(session, verdict.id or 0, "claim", verdict.claim)
                add_text(session, verdict.id or 0, "summary", verdict.summary)
                if with_messages:
                    add_text(session, verdict.id or 0, "message", row.get("message", ""))
                if verdict.url is not None:
                    known_urls.add(verdict.url)
                report.added += 1
                report.verdict_ids.append(verdict.id or 0)
        except csv.Error as exc:
            report.errors.append(RowError(line, f"unreadable CSV from here on: {exc}"))
    session.flush()
    log.info(
        "verdict import %s: %d added, %d known, %d bad rows",
        path.name,
        report.added,
        report.already_known,
        len(report.errors),
    )
    return report


def _verdict_from_row(row: dict[str, str]) -> Verdict:
    claim = " ".join(row.get("claim", "").split())
    if not claim:
        raise ValueError("missing claim")
    rating = parse_rating(row.get("rating", ""))
    url = parse_url(row.get("url", ""))
    published_at = parse_date(row.get("published_at", ""))
    expires_at = parse_date(row.get("expires_at", ""))
    source = row.get("source", "").strip() or None
    return Verdict(
        claim=claim,
        rating=rating.value,
        summary=row.get("summary", "").strip(),
        url=url,
        sources=[url] if url else [],
        source_name=source[:200] if source else None,
        origin="import",
        status=VerdictStatus.published,
        published_at=published_at,
        expires_at=expires_at,
    )
