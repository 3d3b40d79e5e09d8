"""`kabashoax digest draft|publish|list` on a fresh migrated data dir, as an operator runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from sqlmodel import select
from typer.testing import CliRunner, Result

from knowledge_base import cli_digest
from knowledge_base.db import session_scope
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import AuditLog, Citizen, Notification, Verdict, utcnow


@pytest.fixture
def cli(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://cekfakta.kupangkota.go.id")
    get_digest_settings.cache_clear()
    app = typer.Typer()
    cli_digest.register(app)
    with session_scope() as s:
        s.add_all(
            [
                Verdict(
                    claim="Air PDAM Kupang tercemar racun",
                    rating="HOAKS",
                    published_at=utcnow() - timedelta(days=2),
                ),
                Verdict(claim="Kabar bulan lalu", rating="SALAH", published_at=utcnow() - timedelta(days=20)),
                Citizen(channel="telegram", pseudonym="p1", address="111", subscribed_digest=True),
                Citizen(channel="whatsapp", pseudonym="p2", address="6281", subscribed_digest=True),
                Citizen(channel="telegram", pseudonym="p3", address="333", subscribed_digest=False),
            ]
        )
    yield app
    get_digest_settings.cache_clear()


def run(app: typer.Typer, *args: str) -> Result:
    return CliRunner().invoke(app, ["digest", *args])


def test_draft_publish_and_list(cli: typer.Typer) -> None:
    drafted = run(cli, "draft", "--json")
    assert drafted.exit_code == 0, drafted.output
    data = json.loads(drafted.output)
    assert data["status"] == "draft" and [i["claim"] for i in data["items"]] == [
        "Air PDAM Kupang tercemar racun"
    ]
    assert data["items"][0]["url"].startswith("https://cekfakta.kupangkota.go.id/cek-fakta/")

    month = (utcnow() - timedelta(days=30)).date().isoformat()
    wider = run(cli, "draft", "--since", month)
    assert wider.exit_code == 0 and "2 verdicts" in wider.output, wider.output

    published = run(cli, "publish", str(data["id"]))
    assert published.exit_code == 0, published.output
    assert f"digest {data['id']} published: 2 subscribers queued (telegram 1, whatsapp 1)" in published.output
    again = run(cli, "publish", str(data["id"]))
    assert again.exit_code == 0 and "already published" in again.output
    with session_scope() as s:
        assert len(s.exec(select(Notification).where(Notification.digest_id == data["id"])).all()) == 2
        audit = s.exec(select(AuditLog).where(AuditLog.action == "digest.publish")).one()
        assert audit.detail["via"] == "cli" and audit.user_id is None

    listing = run(cli, "list", "--json")
    rows = [json.loads(line) for line in listing.output.splitlines()]
    assert {r["id"]: (r["status"], r["queued"]) for r in rows}[data["id"]] == ("published", 2)
    text = run(cli, "list").output
    assert "subscribers: telegram 1, whatsapp 1" in text


def test_the_weekly_draft_is_idempotent_from_the_shell(cli: typer.Typer) -> None:
    first = json.loads(run(cli, "draft", "--weekly", "--json").output)
    second = json.loads(run(cli, "draft", "--weekly", "--json").output)
    assert first["id"] == second["id"] and first["automatic"]


def test_bad_input_gets_a_clear_error(cli: typer.Typer) -> None:
    bad = run(cli, "draft", "--since", "kemarin")
    assert bad.exit_code == 2 and "--since must be" in bad.output
    missing = run(cli, "publish", "999")
    assert missing.exit_code == 1 and "Kabar tidak ditemukan" in missing.output
    future = run(cli, "draft", "--since", (utcnow() + timedelta(days=1)).isoformat())
    assert future.exit_code == 1 and "setelah" in future.output
    empty = json.loads(
        run(cli, "draft", "--since", (utcnow() - timedelta(hours=1)).isoformat(), "--json").output
    )
    assert empty["items"] == []
    refused = run(cli, "publish", str(empty["id"]))
    assert refused.exit_code == 1 and "kosong" in refused.output
