"""Dates as citizens and staff read them: Kupang time (WITA, UTC+8, no daylight saving), Indonesian months."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

WITA = timezone(timedelta(hours=8), "WITA")
MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)
UNDATED = "tanpa tanggal"


def format_date(value: datetime | None) -> str:
    """'5 Maret 2026', the calendar day in Kupang (an aware UTC value late in the day is the next day)."""
    if value is None:
        return UNDATED
    local = value.astimezone(WITA) if value.tzinfo else value
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"
