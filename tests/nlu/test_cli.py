"""`kabashoax nlu parse`: the JSON shape the bot's developers and operators rely on, with Rasa down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from nlu import cli
from nlu.fallback import FallbackClassifier, get_fallback
from nlu.rasa_service import free_port
from nlu.settings import get_settings

from .conftest import TOKEN


@pytest.fixture
def app(
    nlu_work: Path, fallback: FallbackClassifier, monkeypatch: pytest.MonkeyPatch
) -> Iterator[typer.Typer]:
    monkeypatch.setenv("RASA_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("RASA_TOKEN", TOKEN)
    monkeypatch.setenv("NLU_DATA_DIR", str(nlu_work))  # the fallback model cached by the session fixture
    get_settings.cache_clear()
    get_fallback.cache_clear()
    app = typer.Typer()
    cli.register(app)
    yield app
    get_settings.cache_clear()
    get_fallback.cache_clear()


def test_parse_json_has_the_documented_fields(app: typer.Typer) -> None:
    out = CliRunner().invoke(app, ["nlu", "parse", "betul ko PDAM mau naik tarif?", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert set(body) == {"intent", "confidence", "ranking", "entities", "source"}
    assert (body["intent"], body["source"]) == ("check_claim", "fallback")
    assert 0 < body["confidence"] <= 1
    assert body["ranking"][0] == {"name": "check_claim", "confidence": body["confidence"]}
    assert body["entities"] == [{"entity": "organisation", "value": "PDAM", "start": 9, "end": 13}]


def test_stdin_lines_become_json_lines(app: typer.Typer) -> None:
    out = CliRunner().invoke(app, ["nlu", "parse"], input="halo kaka\n\nstop langganan\ndanke e\n")
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["intent"] for r in rows] == ["greet", "unsubscribe_digest", "thanks"]


def test_human_output(app: typer.Typer) -> None:
    out = CliRunner().invoke(app, ["nlu", "parse", "hapus data saya"])
    assert out.exit_code == 0
    assert out.stdout.startswith("delete_my_data ") and "[fallback]" in out.stdout


def test_empty_text_is_a_clear_error(app: typer.Typer) -> None:
    out = CliRunner().invoke(app, ["nlu", "parse", "  "])
    assert out.exit_code == 2
    assert "empty" in out.stderr
