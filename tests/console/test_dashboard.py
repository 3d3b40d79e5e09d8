"""Dashboard figures from known rows: WITA days, median time to verdict, backlog by age, top claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from fact_team_console import dashboard
from knowledge_base.models import Verdict
from tests.console.conftest import make_claim

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


def test_figures(session: Session) -> None:
    late_evening = datetime(2026, 5, 8, 17, 0, tzinfo=UTC)  # 9 May 01:00 in Kupang (WITA)
    make_claim(session, "Klaim larut malam", asks=1, first_asked_at=late_evening, last_asked_at=late_evening)
    for hours, text in ((2, "Klaim A"), (4, "Klaim B"), (10, "Klaim C")):
        asked = NOW - timedelta(days=3)
        claim = make_claim(
            session, text, asks=1, status="published", first_asked_at=asked, last_asked_at=asked
        )
        session.add(
            Verdict(
                claim=text,
                rating="SALAH",
                status="published",
                claim_id=claim.id,
                published_at=asked + timedelta(hours=hours),
            )
        )
    make_claim(session, "Klaim sembilan hari", asks=2, first_asked_at=NOW - timedelta(days=9))
    make_claim(session, "Klaim digabung", asks=5, status="merged")
    session.commit()

    stats = dashboard.compute(session, now=NOW)

    per_day = {b.label: b.value for b in stats.tickets_per_day}
    assert len(per_day) == 14 and per_day["09/05"] == 1 and per_day["08/05"] == 0
    assert per_day["07/05"] == 3  # the three answered claims (merged ones are not counted)
    assert stats.median_hours_to_verdict == 4.0 and stats.verdicts_counted == 3
    assert {b.label: b.value for b in stats.backlog_by_age} == {
        "< 1 hari": 0,
        "1–3 hari": 1,
        "3–7 hari": 0,
        "> 7 hari": 1,
    }
    assert stats.open_total == 2
    top = stats.top_claims[0]  # the asks were filed "now", after NOW - 7 days
    assert (top.preview, top.asks_this_week) == ("Klaim sembilan hari", 2)
    assert "Klaim digabung" not in [c.preview for c in stats.top_claims]


def test_empty_database(session: Session) -> None:
    stats = dashboard.compute(session, now=NOW)
    assert stats.median_hours_to_verdict is None and stats.open_total == 0 and stats.top_claims == []
    assert sum(b.value for b in stats.tickets_per_day) == 0
