"""The `kabashoax` command: one entry point that wires the knowledge base, NLU, bot and console."""

from __future__ import annotations

import typer

import bot.cli
import fact_team_console.cli
import knowledge_base.cli_claims
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


if __name__ == "__main__":
    app()
