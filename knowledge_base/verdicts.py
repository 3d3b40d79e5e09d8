"""Verdicts: importing past fact-checks, publishing, correcting and rejecting, with the outbox filled.

Functions flush but never commit: the caller (console request, CLI command) owns the transaction, so
a verdict, its index texts and its notifications land together or not at all. Notification dedupe keys
make every enqueue idempotent: publishing twice never messages a citizen twice.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from knowledge_base import near_duplicate
from knowledge_base.digests import on_verdict_published
from knowledge_base.models import (
    Citizen,
    CitizenReport,
    Claim,
    ClaimStatus,
    Notification,
    Rating,
    Verdict,
    VerdictStatus,
    VerdictText,
    utcnow,
)

log = logging.getLogger(__name__)

# Fact-checkers' labels (turnbackhoax.id/Mafindo, Tempo, Kompas, AFP, English) on the fixed scale.
RATING_LABELS: dict[str, Rating] = {
    "HOAKS": Rating.HOAKS,
    "HOAX": Rating.HOAKS,
    "DISINFORMASI": Rating.HOAKS,
    "FITNAH": Rating.HOAKS,
    "FABRICATED": Rating.HOAKS,
    "KONTEN PALSU": Rating.HOAKS,
    "SALAH": Rating.SALAH,
    "KELIRU": Rating.SALAH,
    "MISINFORMASI": Rating.SALAH,
    "FALSE": Rating.SALAH,
    "TIDAK BENAR": Rating.SALAH,
    "MENYESATKAN": Rating.MENYESATKAN,
    "MISLEADING": Rating.MENYESATKAN,
    "KONTEN MENYESATKAN": Rating.MENYESATKAN,
    "KONTEKS SALAH": Rating.MENYESATKAN,
    "KURANG KONTEKS": Rating.MENYESATKAN,
    "MISSING CONTEXT": Rating.MENYESATKAN,
    "KONTEN YANG DIMANIPULASI": Rating.MENYESATKAN,
    "SEBAGIAN BENAR": Rating.SEBAGIAN_BENAR,
    "SEBAGIAN SALAH": Rating.SEBAGIAN_BENAR,
    "PARTLY TRUE": Rating.SEBAGIAN_BENAR,
    "PARTLY FALSE": Rating.SEBAGIAN_BENAR,
    "BENAR": Rating.BENAR,
    "FAKTA": Rating.BENAR,
    "TRUE": Rating.BENAR,
    "TIDAK TERBUKTI": Rating.TIDAK_TERBUKTI,
    "BELUM TERBUKTI": Rating.TIDAK_TERBUKTI,
    "UNPROVEN": Rating.TIDAK_TERBUKTI,
    "PENIPUAN": Rating.PENIPUAN,
    "SCAM": Rating.PENIPUAN,
    "FRAUD": Rating.PENIPUAN,
    "SATIRE": Rating.SATIRE,
    "SATIRA": Rating.SATIRE,
    "PARODI": Rating.SATIRE,
    "PARODY": Rating.SATIRE,
    "KOMEDI": Rating.SATIRE,
}
REQUIRED_COLUMNS = ("claim", "rating")
CORRECTABLE = frozenset({"claim", "rating", "summary", "url", "sources", "expires_at", "reviewer_id"})
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


def parse_rating(label: str) -> Rating:
    """A fact-checker's label ("[SALAH]", "Hoaks", "partly-true") on the fixed scale, else ValueError."""
    key = " ".join(re.sub(r"[\[\]()_\-:]", " ", label or "").upper().split())
    if key in RATING_LABELS:
        return RATING_LABELS[key]
    raise ValueError(f"unknown rating {label.strip()!r}" if label and label.strip() else "missing rating")


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


def add_text(session: Session, verdict_id: int, kind: str, text: str) -> VerdictText | None:
    """Index one more text of a verdict (claim, summary or circulated message); duplicates are skipped.

    The embedding is left empty: the matcher embeds new texts on its next sync, in whichever process.
    """
    text = (text or "").strip()
    if not near_duplicate.canonical(text):
        return None
    digest = near_duplicate.text_hash(text)
    exists = session.exec(
        select(VerdictText.id).where(VerdictText.verdict_id == verdict_id, VerdictText.text_hash == digest)
    ).first()
    if exists is not None:
        return None
    row = VerdictText(
        verdict_id=verdict_id, kind=kind, text=text, text_hash=digest, simhash=near_duplicate.simhash(text)
    )
    session.add(row)
    return row


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


# --------------------------------------------------------------------------- askers and the outbox


def _askers(session: Session, claim_id: int | None) -> list[Citizen]:
    """Citizens who asked about this ticket (or a ticket merged into it), once each, not deleted."""
    if claim_id is None:
        return []
    claim_ids = [claim_id, *session.exec(select(Claim.id).where(Claim.merged_into_id == claim_id)).all()]
    asked = select(CitizenReport.citizen_id).where(col(CitizenReport.claim_id).in_(claim_ids))
    rows = session.exec(
        select(Citizen)
        .where(col(Citizen.id).in_(asked), col(Citizen.deleted_at).is_(None))
        .order_by(col(Citizen.id))
    ).all()
    return list(rows)


def _enqueue(session: Session, citizens: Iterable[Citizen], key_prefix: str, **fields: Any) -> int:
    """One pending notification per citizen unless its dedupe key exists; returns how many were added."""
    added = 0
    for citizen in citizens:
        key = f"{key_prefix}:citizen:{citizen.id}"
        if session.exec(select(Notification.id).where(Notification.dedupe_key == key)).first() is not None:
            continue
        try:
            with session.begin_nested():  # another process may enqueue the same key at the same moment
                session.add(
                    Notification(dedupe_key=key, citizen_id=citizen.id, channel=citizen.channel, **fields)
                )
        except IntegrityError:
            continue
        added += 1
    return added


def _index_circulated_texts(session: Session, verdict: Verdict) -> None:
    """Attach every text citizens sent about the ticket, so the next forward of it matches this verdict."""
    if verdict.claim_id is None:
        return
    claim_ids = [
        verdict.claim_id,
        *session.exec(select(Claim.id).where(Claim.merged_into_id == verdict.claim_id)),
    ]
    for claim in session.exec(select(Claim).where(col(Claim.id).in_(claim_ids))).all():
        add_text(session, verdict.id or 0, "message", claim.text)
    reports = session.exec(select(CitizenReport.text).where(col(CitizenReport.claim_id).in_(claim_ids))).all()
    for text in reports:
        add_text(session, verdict.id or 0, "message", text or "")


def publish_verdict(verdict_id: int, *, session: Session) -> int:
    """Publish: index claim, summary and every ticket message, close the ticket, notify each asker once.

    Returns the number of notifications enqueued (0 on a repeated publish).
    """
    verdict = session.get(Verdict, verdict_id)
    if verdict is None:
        raise LookupError(f"verdict {verdict_id} not found")
    now = utcnow()
    verdict.status = VerdictStatus.published
    verdict.published_at = verdict.published_at or now
    verdict.updated_at = now
    session.add(verdict)
    add_text(session, verdict_id, "claim", verdict.claim)
    add_text(session, verdict_id, "summary", verdict.summary)
    _index_circulated_texts(session, verdict)
    if verdict.claim_id is not None:
        claim = session.get(Claim, verdict.claim_id)
        if claim is not None and claim.status != ClaimStatus.merged:
            claim.status = ClaimStatus.published
            claim.closed_at = claim.closed_at or now
            session.add(claim)
    added = _enqueue(
        session,
        _askers(session, verdict.claim_id),
        f"verdict:{verdict_id}:v{verdict.version}",
        kind="verdict",
        verdict_id=verdict_id,
        claim_id=verdict.claim_id,
    )
    on_verdict_published(verdict, session=session)  # the channel post, when configured
    session.flush()
    log.info("verdict %s v%s published, %d notifications", verdict_id, verdict.version, added)
    return added


def correct_verdict(verdict_id: int, *, session: Session, **changes: Any) -> int:
    """Apply a correction as a new version and tell the citizens who asked; returns notifications added.

    Changed claim or summary texts replace the old ones in the index (the old wording may be wrong).
    """
    unknown = set(changes) - CORRECTABLE
    if unknown:
        raise ValueError(f"cannot correct field(s) {', '.join(sorted(unknown))}")
    verdict = session.get(Verdict, verdict_id)
    if verdict is None:
        raise LookupError(f"verdict {verdict_id} not found")
    if "rating" in changes:
        changes["rating"] = parse_rating(str(changes["rating"])).value
    if "claim" in changes and not " ".join(str(changes["claim"] or "").split()):
        raise ValueError("missing claim")
    changed = {k: v for k, v in changes.items() if getattr(verdict, k) != v}
    if not changed:
        return 0
    for name, value in changed.items():
        setattr(verdict, name, value)
    verdict.version += 1
    verdict.updated_at = utcnow()
    session.add(verdict)
    for kind in ("claim", "summary"):
        if kind in changed:
            for old in session.exec(
                select(VerdictText).where(VerdictText.verdict_id == verdict_id, VerdictText.kind == kind)
            ).all():
                session.delete(old)
            session.flush()
            add_text(session, verdict_id, kind, getattr(verdict, kind))
    added = 0
    if verdict.status == VerdictStatus.published:
        added = _enqueue(
            session,
            _askers(session, verdict.claim_id),
            f"correction:{verdict_id}:v{verdict.version}",
            kind="correction",
            verdict_id=verdict_id,
            claim_id=verdict.claim_id,
        )
    session.flush()
    log.info(
        "verdict %s corrected to v%s (%s), %d notifications",
        verdict_id,
        verdict.version,
        ", ".join(sorted(changed)),
        added,
    )
    return added


def reject_claim(claim_id: int, reason: str, *, session: Session) -> int:
    """Close a ticket as not checkable and tell every asker why; returns notifications added."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValueError("a rejection needs a reason: citizens receive it")
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise LookupError(f"claim {claim_id} not found")
    claim.status = ClaimStatus.rejected
    claim.reject_reason = reason
    claim.closed_at = claim.closed_at or utcnow()
    session.add(claim)
    added = _enqueue(
        session, _askers(session, claim_id), f"rejection:{claim_id}", kind="rejection", claim_id=claim_id
    )
    session.flush()
    log.info("claim %s rejected, %d notifications", claim_id, added)
    return added
