"""The operator's commands: `kabashoax sources add|list|disable|enable|sync` and `kabashoax ingest`."""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from sqlmodel import func, select
from typer.testing import CliRunner, Result

from knowledge_base import cli_ingest
from knowledge_base.db import session_scope
from knowledge_base.models import Article, Passage, Source
from knowledge_base.settings import get_settings

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"


@pytest.fixture
def cli(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """This part's commands on a fresh migrated database, printing wide enough to read whole errors."""
    monkeypatch.setenv("COLUMNS", "250")
    app = typer.Typer()
    cli_ingest.register(app)
    yield app


def run(app: typer.Typer, *args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def static_feeds(shared_data: Path) -> Iterator[str]:
    """The real feed files served over HTTP on 127.0.0.1 (404 for anything else)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

    handler = functools.partial(Quiet, directory=str(shared_data / "feeds"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def count(model: type[Article] | type[Passage]) -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def source(name: str) -> Source:
    with session_scope() as session:
        return session.exec(select(Source).where(Source.name == name)).one()


def test_samples_load_offline_and_reloading_adds_nothing(cli: typer.Typer) -> None:
    first = run(cli, "ingest", "--samples", "--no-index")
    assert first.exit_code == 0, first.output
    assert "sample-antara-jambi" in first.output and "sample-tempo-cekfakta" in first.output
    assert count(Article) == 59 and count(Passage) >= 59

    again = run(cli, "ingest", "--samples", "--no-index")
    assert again.exit_code == 0 and count(Article) == 59


def test_sync_list_disable_enable(cli: typer.Typer) -> None:
    synced = run(cli, "sources", "sync")
    assert synced.exit_code == 0 and "10 added" in synced.output
    listed = run(cli, "sources", "list")
    assert listed.exit_code == 0
    for name in ("pos-kupang", "antara-ntt", "turnbackhoax", "komdigi-hoaks"):
        assert name in listed.output

    assert run(cli, "sources", "disable", "pos-kupang").exit_code == 0
    assert source("pos-kupang").enabled is False
    assert "0 added" in run(cli, "sources", "sync").output
    assert source("pos-kupang").enabled is False  # the operator's decision survives a sync
    assert run(cli, "sources", "enable", "pos-kupang").exit_code == 0
    assert source("pos-kupang").enabled is True


def test_sources_add_and_its_errors(cli: typer.Typer) -> None:
    added = run(
        cli,
        "sources",
        "add",
        "victory",
        "--url",
        "https://www.victorynews.id/feed",
        "--outlet",
        "Victory News",
    )
    assert added.exit_code == 0, added.output
    assert (source("victory").outlet, source("victory").kind) == ("Victory News", "media")

    again = run(cli, "sources", "add", "victory", "--url", "https://x.id/rss", "--outlet", "X")
    assert again.exit_code == 2 and "already exists" in again.output
    bad = run(cli, "sources", "add", "x", "--url", "not a url", "--outlet", "X")
    assert bad.exit_code == 2 and "http(s) URL" in bad.output
    kind = run(cli, "sources", "add", "y", "--url", "https://y.id/rss", "--outlet", "Y", "--kind", "blog")
    assert kind.exit_code == 2
    assert run(cli, "sources", "disable", "nope").exit_code == 2
    broken_yaml = FIXTURES / "invalid_xml.xml"
    synced = run(cli, "sources", "sync", "--file", str(broken_yaml))
    assert synced.exit_code == 2 and "invalid_xml.xml" in synced.output


def test_a_broken_saved_feed_exits_1_and_shows_in_the_list(cli: typer.Typer) -> None:
    run(cli, "sources", "add", "kabar", "--url", "https://kabar.example.id/rss", "--outlet", "Kabar")
    result = run(cli, "ingest", "--file", str(FIXTURES / "invalid_xml.xml"), "--source", "kabar")
    assert result.exit_code == 1 and "not a readable feed" in result.output
    listed = run(cli, "sources", "list")
    assert "not a readable feed" in listed.output and count(Article) == 0


def test_usage_errors_exit_2(cli: typer.Typer, tmp_path: Path) -> None:
    run(cli, "sources", "add", "kabar", "--url", "https://kabar.example.id/rss", "--outlet", "Kabar")
    no_source = run(cli, "ingest", "--file", str(FIXTURES / "empty.xml"))
    assert no_source.exit_code == 2 and "--source" in no_source.output
    unknown = run(cli, "ingest", "--source", "nope")
    assert unknown.exit_code == 2 and "no source named 'nope'" in unknown.output
    missing = run(cli, "ingest", "--file", str(tmp_path / "missing.xml"), "--source", "kabar")
    assert missing.exit_code == 2 and "missing.xml" in missing.output
    run(cli, "ingest", "--samples", "--no-index")
    no_url = run(cli, "ingest", "--source", "sample-detikcom")
    assert no_url.exit_code == 2 and "no feed URL for sample-detikcom" in no_url.output
    assert source("kabar").error_count == 0  # a typo of the operator is not the feed's failure
    assert source("sample-detikcom").error_count == 0


def test_nothing_due_is_not_an_error(cli: typer.Typer) -> None:
    result = run(cli, "ingest", "--no-index")
    assert result.exit_code == 0 and "no source is due" in result.output


def test_ingest_due_sources_over_http_one_failing(cli: typer.Typer, static_feeds: str) -> None:
    run(
        cli,
        "sources",
        "add",
        "antara",
        "--url",
        f"{static_feeds}/antara_terkini_2017.xml",
        "--outlet",
        "ANTARA",
    )
    run(cli, "sources", "add", "gone", "--url", f"{static_feeds}/gone.xml", "--outlet", "Gone")
    result = run(cli, "ingest", "--no-index")
    assert result.exit_code == 0, result.output  # one source read: the run did its job
    assert "HTTP 404" in result.output and count(Article) == 20
    assert source("gone").error_count == 1 and source("antara").last_ok_at is not None

    later = run(cli, "ingest", "--no-index")
    assert "no source is due" in later.output  # both were just polled
    only_broken = run(cli, "ingest", "--source", "gone", "--no-index")
    assert only_broken.exit_code == 1  # every source tried failed


def test_a_scheduled_run_syncs_the_sources_file_first(
    cli: typer.Typer, static_feeds: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(
        "sources:\n"
        f"  - {{name: detik, outlet: detikcom, feed_url: '{static_feeds}/detikcom_2017.xml'}}\n"
        f"  - {{name: mati, outlet: Mati, feed_url: '{static_feeds}/gone.xml', enabled: false}}\n"
    )
    monkeypatch.setenv("KABASHOAX_SOURCES_FILE", str(sources_file))
    get_settings.cache_clear()
    result = run(cli, "ingest", "--sync", "--no-index")
    assert result.exit_code == 0, result.output
    assert count(Article) == 10 and source("mati").last_polled_at is None


@pytest.mark.slow
def test_ingested_passages_are_indexed_and_found_by_title(cli: typer.Typer) -> None:
    """The whole path a fresh offline install takes: bundled feeds → passages → embeddings → search."""
    from knowledge_base.search import search_passages

    result = run(cli, "ingest", "--samples")
    assert result.exit_code == 0 and "indexed 59 passages" in result.output, result.output
    with session_scope() as session:
        (hit,) = search_passages("foto presiden suriah lepas sepatu", k=1, session=session)
    assert hit.outlet == "Tempo Cek Fakta"
    assert hit.title == "Keliru: Foto Presiden Suriah Lepas Sepatu Saat Bertemu Trump"


def test_sources_list_is_readable_in_80_columns(cli: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert run(cli, "sources", "sync").exit_code == 0
    run(cli, "sources", "add", "kabar", "--url", "https://kabar.example.id/rss", "--outlet", "Kabar")
    assert run(cli, "ingest", "--file", str(FIXTURES / "invalid_xml.xml"), "--source", "kabar").exit_code == 1
    assert run(cli, "ingest", "--samples", "--no-index").exit_code == 0
    listed = run(cli, "sources", "list")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert max(len(line) for line in lines) <= 80, listed.output
    assert "…" not in listed.output  # nothing cut ("Tem…", "202…")
    header = lines[0].split()
    assert header == ["name", "on", "last", "ok", "next", "poll", "week", "total", "fails"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1 : lines.index("")]}
    assert rows["sample-antara-jambi"][:3] == ["yes", "now", "-"]  # read just now; no feed URL to poll
    assert rows["pos-kupang"][:4] == ["yes", "never", "now", "0"]  # never polled: due at once
    assert rows["kabar"][-1] == "1"
    errors = listed.output[listed.output.index("last errors:") :]
    assert re.search(r"kabar: failing for \d+s \(1 poll\)", errors)
    assert "(1 poll), last error now: not a readable feed" in " ".join(errors.split())
    as_json = run(cli, "sources", "list", "--json")
    statuses = {row["name"]: row for row in map(json.loads, as_json.output.splitlines())}
    assert (
        statuses["sample-antara-jambi"]["items_this_week"] == statuses["sample-antara-jambi"]["articles"] > 0
    )
    assert statuses["kabar"]["error_count"] == 1 and statuses["kabar"]["failing_since"]
