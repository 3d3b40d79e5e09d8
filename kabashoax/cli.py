"""The `kabashoax` command: one entry point that wires the knowledge base, NLU, bot and console."""

from __future__ import annotations

import typer

import bot.cli
import fact_team_console.cli
import knowledge_base.cli_claims
import knowledge_base.cli_digest
import knowledge_base.cli_ingest
import knowledge_base.cli_search
import nlu.cli
from knowledge_base.db import migrate
from knowledge_base.settings import get_settings

app = typer.Typer(help="Kabashoax: citizen questions and hoax checking for the city.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

for part in (
    knowledge_base.cli_ingest,
    knowledge_base.cli_search,
    knowledge_base.cli_claims,
    knowledge_base.cli_digest,
    nlu.cli,
    bot.cli,
    fact_team_console.cli,
):
    part.register(app)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate(revision=revision)
    typer.echo(f"schema at {revision} on {get_settings().sqlalchemy_url.split('@')[-1]}")


@app.command("run")
def run(
    host: str = typer.Option("127.0.0.1", help="Interface to serve on"),
    port: int = typer.Option(8000, help="Port of the web app (console, webhooks, Coba bot)"),
    rasa: bool = typer.Option(True, "--rasa/--no-rasa", help="Train and serve Rasa when it is installed"),
    notifier: bool = typer.Option(True, "--notifier/--no-notifier", help="Deliver outbox notifications"),
    ingest: bool = typer.Option(
        True, "--ingest/--no-ingest", help="Load bundled feeds and due sources first"
    ),
    poll: bool = typer.Option(
        True, "--poll/--no-poll", help="Also poll the trusted sources' feeds (network)"
    ),
) -> None:
    """Start everything: migrations, knowledge base, Rasa, web app (console + webhooks), notifier."""
    from kabashoax.run import run as run_all

    run_all(host, port, rasa=rasa, notifier=notifier, ingest=ingest, poll_sources=poll)


if __name__ == "__main__":
    app()
