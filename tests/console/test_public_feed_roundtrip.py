"""Round trip: another city's deployment serves its verdict feed over HTTP; ours ingests it as a source.

Deployment A runs the real web app under uvicorn on its own SQLite file; deployment B (this process's
data dir) registers A's `/cek-fakta/feed.xml` as a `factchecker` source with the CLI and ingests it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import typer
import uvicorn
from sqlmodel import Session, select
from typer.testing import CliRunner

from fact_team_console.web import create_app
from knowledge_base import cli_ingest
from knowledge_base.db import engine_for, get_session, migrate, session_scope
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import Article, Passage, Source, Verdict, utcnow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def other_city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[int]]]:
    """Deployment A: its own database with two published verdicts, served on a real local port."""
    url = f"sqlite:///{tmp_path / 'kota-a' / 'kabashoax.sqlite3'}"
    migrate(url)
    engine = engine_for(url)
    with Session(engine, expire_on_commit=False) as s:
        verdicts = [
            Verdict(
                claim="Air PDAM Kota A tercemar racun sianida",
                rating="HOAKS",
                summary="Uji laboratorium Dinas Kesehatan Kota A menunjukkan air layak minum.",
                origin="console",
                published_at=utcnow() - timedelta(days=1),
            ),
            Verdict(
                claim="Lowongan kerja tim dapur MBG seluruh Indonesia",
                rating="PENIPUAN",
                summary="Tautan rekrutmen meminta data pribadi; bukan situs resmi.",
                origin="import",
                source_name="turnbackhoax.id (Mafindo)",
                url="https://turnbackhoax.id/articles/30952-penipuan-lowongan",
                published_at=utcnow() - timedelta(days=3),
            ),
        ]
        s.add_all(verdicts)
        s.commit()
        ids = [v.id or 0 for v in verdicts]

    def a_session() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as s:
            yield s

    port = _free_port()
    monkeypatch.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    get_digest_settings.cache_clear()
    app = create_app()
    app.dependency_overrides[get_session] = a_session
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ids
    server.should_exit = True
    thread.join(timeout=10)
    get_digest_settings.cache_clear()


def test_our_ingester_reads_another_deployments_verdict_feed(
    app_env: Path, other_city: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, ids = other_city
    monkeypatch.setenv("COLUMNS", "250")
    cli = typer.Typer()
    cli_ingest.register(cli)
    runner = CliRunner()
    added = runner.invoke(
        cli,
        [
            "sources",
            "add",
            "cekfakta-kota-a",
            "--url",
            f"{base}/cek-fakta/feed.xml",
            "--outlet",
            "Cek Fakta Kota A",
            "--kind",
            "factchecker",
        ],
    )
    assert added.exit_code == 0, added.output
    ingested = runner.invoke(cli, ["ingest", "--source", "cekfakta-kota-a", "--no-index"])
    assert ingested.exit_code == 0, ingested.output

    with session_scope() as s:
        source = s.exec(select(Source).where(Source.name == "cekfakta-kota-a")).one()
        assert (source.kind, source.last_error, source.error_count) == ("factchecker", None, 0)
        articles = {a.url: a for a in s.exec(select(Article).where(Article.source_id == source.id))}
        assert set(articles) == {f"{base}/cek-fakta/{i}" for i in ids}
        pdam = articles[f"{base}/cek-fakta/{ids[0]}"]
        assert pdam.title == "[HOAKS] Air PDAM Kota A tercemar racun sianida"
        assert pdam.author == "Tim Cek Fakta Kota Kupang" and pdam.published_at is not None
        passages = " ".join(p.text for p in s.exec(select(Passage).where(Passage.article_id == pdam.id)))
        assert "Uji laboratorium Dinas Kesehatan Kota A" in passages and "HOAKS" in passages
        assert articles[f"{base}/cek-fakta/{ids[1]}"].author == "turnbackhoax.id (Mafindo)"

    again = runner.invoke(cli, ["ingest", "--source", "cekfakta-kota-a", "--no-index"])
    assert again.exit_code == 0, again.output
    with session_scope() as s:
        assert len(s.exec(select(Article)).all()) == 2  # re-reading the feed adds nothing
