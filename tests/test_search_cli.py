"""`kabashoax search / ask / index` on a real migrated SQLite, fed by a real fact-check feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlmodel import select
from typer.testing import CliRunner

from knowledge_base.cli_search import register
from knowledge_base.db import session_scope
from knowledge_base.feeds import ingest_file
from knowledge_base.models import Passage, Source
from knowledge_base.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli(app_env: Path, shared_data: Path) -> typer.Typer:
    """The search commands over the 9 items of Tempo's Cek Fakta feed."""
    with session_scope() as session:
        source = Source(name="tempo-cekfakta", outlet="Tempo Cek Fakta", kind="factchecker")
        session.add(source)
        session.flush()
        report = ingest_file(shared_data / "feeds" / "tempo_cekfakta_processed.xml", source, session=session)
        assert report.new_passages >= 9
    app = typer.Typer()
    register(app)
    return app


def test_index_sync_then_search_prints_citations(cli: typer.Typer) -> None:
    synced = runner.invoke(cli, ["index", "sync"])
    assert synced.exit_code == 0, synced.output
    assert "indexed" in synced.output and "indexed 0" not in synced.output

    result = runner.invoke(
        cli, ["search", "virus hanta itu senjata biologis amerika ka?", "--k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert len(hits) == 3
    assert "X-Files" in hits[0]["title"]
    assert hits[0]["outlet"] == "Tempo Cek Fakta" and hits[0]["url"].startswith("http")
    assert hits[0]["published_at"].startswith("2026")
    assert hits[0]["ranks"]["lexical"] == 1 and hits[0]["ranks"]["dense"] <= 3

    table = runner.invoke(cli, ["search", "rupiah dilemahkan bank indonesia"])
    assert table.exit_code == 0 and "Rupiah" in table.output and "Tempo Cek Fakta" in table.output


def test_ask_answers_with_citation_or_says_it_does_not_know(cli: typer.Typer) -> None:
    found = runner.invoke(cli, ["ask", "benar ka Bank Indonesia sengaja bikin rupiah lemah?"])
    assert found.exit_code == 0, found.output
    assert "Sumber:" in found.output and "Tempo Cek Fakta" in found.output and "2026" in found.output

    unknown = runner.invoke(cli, ["ask", "jadwal kapal feri Kupang ke Rote besok"])
    assert unknown.exit_code == 1 and "Maaf" in unknown.output


def test_check_detects_drift_and_repair_fixes_it(cli: typer.Typer) -> None:
    assert runner.invoke(cli, ["index", "sync"]).exit_code == 0
    assert runner.invoke(cli, ["index", "check"]).exit_code == 0
    with session_scope() as session:
        victim = session.exec(select(Passage).order_by(Passage.id)).first()
        session.delete(victim)
    drift = runner.invoke(cli, ["index", "check"])
    assert drift.exit_code == 1 and "in index but not in database: 1" in drift.output
    repaired = runner.invoke(cli, ["index", "check", "--repair"])
    assert repaired.exit_code == 0 and "ok" in repaired.output


def test_rebuild_and_bad_options(cli: typer.Typer) -> None:
    rebuilt = runner.invoke(cli, ["index", "rebuild"])
    assert rebuilt.exit_code == 0 and "rebuilt the passage index with" in rebuilt.output
    bad = runner.invoke(cli, ["search", "rupiah", "--k", "0"])
    assert bad.exit_code == 2
    nonsense = runner.invoke(cli, ["search", "zzzz qqqq xxxx", "--json"])
    assert nonsense.exit_code == 0
    assert all(h["score"] < get_settings().answer_min_score for h in json.loads(nonsense.output))
