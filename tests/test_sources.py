"""The source registry: the bundled sources.yaml, syncing it, operator changes and when a feed is due."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from knowledge_base.models import Source, utcnow
from knowledge_base.sources import (
    SAMPLES_DIR,
    SAMPLES_FILE,
    SourceError,
    add_source,
    due_sources,
    is_due,
    list_sources,
    load_specs,
    next_poll_at,
    schedule_next,
    set_enabled,
    sync_sources,
)


def test_bundled_sources_are_valid_and_cover_kupang_media_government_and_factcheckers() -> None:
    specs = load_specs()
    names = {s.name for s in specs}
    assert {
        "pos-kupang",
        "antara-ntt",
        "pemkot-kupang",
        "komdigi-hoaks",
        "turnbackhoax",
        "cekfakta-com",
    } <= names
    assert {s.kind for s in specs} == {"media", "government", "factchecker"}
    for spec in specs:
        assert spec.evidence, f"{spec.name}: say why the feed URL is believed right"
        assert spec.verified is False  # written offline: nothing was fetched to check it
        if spec.feed_url is None:
            assert not spec.enabled, f"{spec.name}: a source without a feed cannot be polled"


def test_bundled_samples_point_at_shipped_files() -> None:
    specs = load_specs(SAMPLES_FILE)
    assert specs and all(s.name.startswith("sample-") and s.feed_url is None for s in specs)
    for spec in specs:
        assert (SAMPLES_DIR / str(spec.file)).is_file()
    assert (SAMPLES_DIR / "README.md").is_file()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - {name: Pos Kupang, outlet: X, feed_url: 'https://a.id/rss'}", "entry 1 (Pos Kupang): name"),
        ("  - {name: pk, outlet: X, feed_url: 'ftp://a.id/rss'}", "entry 1 (pk): feed_url"),
        ("  - {name: pk, feed_url: 'https://a.id/rss'}", "entry 1 (pk): outlet"),
        ("  - {name: pk, outlet: X, kind: tabloid}", "entry 1 (pk): kind"),
        ("  - {name: pk, outlet: X, poll_interval_minutes: 1}", "poll_interval_minutes"),
        ("  - {name: pk, outlet: X, feed: 'https://a.id/rss'}", "feed: Extra inputs"),
        ("  - {name: pk, outlet: X}\n  - {name: pk, outlet: Y}", "duplicate source names: pk"),
    ],
)
def test_a_bad_sources_file_names_the_entry_and_the_problem(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n{entry}\n")
    with pytest.raises(SourceError) as info:
        load_specs(path)
    assert message in str(info.value)


@pytest.mark.parametrize("content", ["", "sources: 3\n", "- a\n", "sources: [\n"])
def test_a_sources_file_of_the_wrong_shape_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(content)
    with pytest.raises(SourceError, match=str(path)):
        load_specs(path)


def test_sync_adds_updates_and_keeps_the_operators_disable(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - {name: pk, outlet: Pos Kupang, feed_url: 'https://a.id/rss', poll_interval_minutes: 30}\n"
        "  - {name: gov, outlet: Pemkot, kind: government, feed_url: 'https://b.id/feed/'}\n"
    )
    report = sync_sources(load_specs(path), session=session)
    assert sorted(report.added) == ["gov", "pk"]
    pk = session.exec(select(Source).where(Source.name == "pk")).one()
    assert (pk.outlet, pk.kind, pk.poll_interval_minutes, pk.enabled) == ("Pos Kupang", "media", 30, True)

    set_enabled("gov", False, session=session)
    pk.etag, pk.last_modified = '"v1"', "Mon, 02 Mar 2026 10:00:00 GMT"
    path.write_text(
        "sources:\n"
        "  - {name: pk, outlet: Pos Kupang, feed_url: 'https://a.id/rss2', poll_interval_minutes: 30}\n"
        "  - {name: gov, outlet: Pemkot Kupang, kind: government, feed_url: 'https://b.id/feed/'}\n"
    )
    report = sync_sources(load_specs(path), session=session)
    assert sorted(report.updated) == ["gov", "pk"]
    gov = session.exec(select(Source).where(Source.name == "gov")).one()
    assert gov.outlet == "Pemkot Kupang" and gov.enabled is False
    assert pk.feed_url == "https://a.id/rss2"
    assert pk.etag is None and pk.last_modified is None  # the old feed's validators mean nothing now
    assert sync_sources(load_specs(path), session=session).unchanged == ["pk", "gov"]


def test_add_refuses_duplicates_and_bad_input(session: Session) -> None:
    add_source("pk", feed_url="https://kupang.tribunnews.com/rss", outlet="Pos Kupang", session=session)
    with pytest.raises(SourceError, match="already exists"):
        add_source("pk", feed_url="https://x.id/rss", outlet="X", session=session)
    with pytest.raises(SourceError, match="http"):
        add_source("other", feed_url="javascript:alert(1)", outlet="X", session=session)
    with pytest.raises(SourceError, match="slug"):
        add_source("Bad Name", feed_url="https://x.id/rss", outlet="X", session=session)
    assert [s.name for s in list_sources(session=session) if s.name in ("pk", "other", "Bad Name")] == ["pk"]


def test_disable_unknown_source_is_a_clear_error(session: Session) -> None:
    with pytest.raises(SourceError, match="no source named 'nope'"):
        set_enabled("nope", False, session=session)


def test_due_after_the_poll_interval_and_failing_feeds_back_off(session: Session) -> None:
    now = utcnow()
    add_source("fresh", feed_url="https://a.id/rss", outlet="A", session=session)
    polled = add_source(
        "polled", feed_url="https://b.id/rss", outlet="B", poll_interval_minutes=60, session=session
    )
    failing = add_source(
        "failing", feed_url="https://c.id/rss", outlet="C", poll_interval_minutes=60, session=session
    )
    off = add_source("off", feed_url="https://d.id/rss", outlet="D", session=session)
    no_feed = add_source("nofeed", feed_url=None, outlet="E", session=session)
    polled.last_polled_at = now - timedelta(minutes=30)
    failing.last_polled_at = now - timedelta(minutes=90)
    failing.error_count = 2  # waits 4 intervals
    off.enabled = False
    session.flush()

    mine = {"fresh", "polled", "failing", "off", "nofeed"}
    assert [s.name for s in due_sources(session=session, now=now) if s.name in mine] == ["fresh"]
    assert is_due(polled, now + timedelta(minutes=31))
    assert next_poll_at(failing) == failing.last_polled_at + timedelta(minutes=240)
    assert not is_due(failing, now) and is_due(failing, now + timedelta(minutes=151))
    assert not is_due(off, now + timedelta(days=30)) and not is_due(no_feed, now)


def test_failures_double_the_wait_up_to_a_cap_and_jitter_spreads_it() -> None:
    now = utcnow()
    source = Source(name="s", outlet="S", feed_url="https://s.id/rss", poll_interval_minutes=30)
    waits = []
    for failures in range(8):
        source.error_count = failures
        waits.append(schedule_next(source, now, jitter=0) - now)
    assert [w / timedelta(minutes=30) for w in waits] == [1, 2, 4, 8, 16, 16, 16, 16]
    source.poll_interval_minutes = 180  # 16 x 3 h would be two days: capped at one
    assert schedule_next(source, now, jitter=0) - now == timedelta(days=1)
    source.error_count = 0
    spread = {schedule_next(source, now, jitter=0.1) for _ in range(50)}
    assert len(spread) > 40  # no two schedulers (or sources) in lock-step
    assert all(timedelta(minutes=162) <= when - now <= timedelta(minutes=198) for when in spread)


def test_the_stored_next_poll_decides_and_reenabling_polls_at_once(session: Session) -> None:
    now = utcnow()
    source = add_source("jadwal", feed_url="https://j.id/rss", outlet="J", session=session)
    source.last_polled_at, source.next_poll_at = now, now + timedelta(hours=3)
    assert next_poll_at(source) == now + timedelta(hours=3) and not is_due(source, now + timedelta(hours=2))
    set_enabled("jadwal", False, session=session)
    set_enabled("jadwal", True, session=session)
    assert is_due(source, utcnow())
