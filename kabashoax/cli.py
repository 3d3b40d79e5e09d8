"""The `kabashoax` command: one entry point that wires the knowledge base, NLU, bot and console.

Registering the commands imports only typer and the parts' command modules, which import their own
work (database, models, the embedding engine) inside each command: `kabashoax --help` and commands
that need no model start in a fraction of a second (tests/test_cli_startup.py checks no model library
is imported at start).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import bot.cli
import fact_team_console.cli
import knowledge_base.cli_claims
import knowledge_base.cli_digest
import knowledge_base.cli_ingest
import knowledge_base.cli_search
import nlu.cli


class KabashoaxApp(typer.Typer):
    """Known operator errors (schema not migrated, database unreachable) end in one line, not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:  # the classes are imported here only: `--help` must not load the ORM
            from sqlalchemy.exc import OperationalError

            from knowledge_base.db import SchemaNotReady

            if isinstance(exc, SchemaNotReady):
                typer.echo(f"error: {exc}", err=True)
            elif isinstance(exc, OperationalError):
                reason = str(exc.orig or exc).strip().splitlines()[0][:300]
                typer.echo(f"error: the database is not reachable: {reason}", err=True)
            else:
                raise
            raise SystemExit(1) from None


app = KabashoaxApp(
    help="Kabashoax: citizen questions and hoax checking for the city.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold DATABASE_URL passwords and tokens
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


# Batch commands whose long steps draw progress bars (servers and conversations never do).
PROGRESS_COMMANDS = frozenset({"ingest", "index", "verdicts", "claims", "restore"})


@app.callback()
def _every_command(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in PROGRESS_COMMANDS:
        return
    from knowledge_base import progress

    # On a terminal only; never in --json mode or when output is captured (pipes, CI logs).
    ctx.with_resource(progress.shown(progress.wanted(as_json="--json" in sys.argv)))


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
    from knowledge_base.db import describe, migrate
    from knowledge_base.settings import get_settings

    migrate(revision=revision)
    typer.echo(f"schema at {revision} on {describe(get_settings().sqlalchemy_url)}")


@app.command("run")
def run(
    host: str = typer.Option("127.0.0.1", help="Interface to serve on"),
    port: int = typer.Option(8000, help="Port of the web app (console, webhooks, Coba bot)"),
    rasa: bool = typer.Option(True, "--rasa/--no-rasa", help="Train and serve Rasa when it is installed"),
    notifier: bool = typer.Option(True, "--notifier/--no-notifier", help="Deliver outbox notifications"),
    ingest: bool = typer.Option(
        True, "--ingest/--no-ingest", help="Load the bundled sample feeds and index them before serving"
    ),
    poll: bool = typer.Option(
        True, "--poll/--no-poll", help="Let the scheduler poll the trusted sources' feeds (network)"
    ),
    scheduler: bool = typer.Option(
        True, "--scheduler/--no-scheduler", help="Start the scheduler process (feeds, indexing, jobs)"
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Web worker processes on the port (more than 1 needs PostgreSQL)"
    ),
) -> None:
    """Start everything: migrations, knowledge base, scheduler, Rasa, web app (console, webhooks), outbox.

    With --workers N (PostgreSQL): N web workers, one notifier and one scheduler process, supervised."""
    from kabashoax.children import share_metrics_between_processes
    from kabashoax.workers import WorkersRefused, check_database

    try:
        check_database(workers)
        share_metrics_between_processes()  # before anything creates a metric
        from kabashoax.run import run as run_all

        run_all(
            host,
            port,
            rasa=rasa,
            notifier=notifier,
            ingest=ingest,
            poll_sources=poll,
            scheduler=scheduler,
            workers=workers,
        )
    except WorkersRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("web")
def web(
    host: str = typer.Option("127.0.0.1", help="Interface to serve on"),
    port: int = typer.Option(8000, help="Port of the web app"),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Worker processes on the port (more than 1 needs PostgreSQL)"
    ),
    fd: Annotated[
        int | None, typer.Option("--fd", hidden=True, help="Serve on this inherited socket")
    ] = None,
) -> None:
    """Serve the web app only (console, webhooks, /metrics, /ready): no notifier, scheduler or Rasa.

    The process model's `web` line: run `kabashoax bot notify` and `kabashoax scheduler` beside it."""
    if fd is not None:  # a worker started by `web --workers N` or `run --workers N`
        from kabashoax.workers import serve_worker

        serve_worker(fd)
        return
    from kabashoax.workers import WorkersRefused, check_database, serve_web

    try:
        check_database(workers)
        if workers > 1:
            from kabashoax.children import share_metrics_between_processes

            share_metrics_between_processes()  # before anything creates a metric
        serve_web(host, port, workers)
    except WorkersRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("scheduler")
def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Run the jobs that are due now, then exit")] = False,
    job: Annotated[list[str] | None, typer.Option("--job", help="Only this job (repeatable)")] = None,
    feeds: Annotated[
        bool, typer.Option("--feeds/--no-feeds", help="Poll the sources' feeds (network)")
    ] = True,
    sync: Annotated[
        bool, typer.Option("--sync/--no-sync", help="Load sources.yaml into the source registry first")
    ] = True,
) -> None:
    """Run the periodic jobs (feed polling, indexing, ...) in this process: niced, one embedding thread."""
    from kabashoax.scheduler_process import main

    raise typer.Exit(main(once=once, only=job or [], feeds=feeds, sync=sync))


@app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="Archive to write (.tar.gz), or a directory for a dated one")],
) -> None:
    """Back up the database (SQLite online backup, or pg_dump) into one archive file."""
    from knowledge_base.backup import BackupError
    from knowledge_base.backup import backup as write_backup
    from knowledge_base.db import ensure_schema

    try:
        ensure_schema()
        written, manifest = write_backup(path)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    counts = ", ".join(f"{n} {t}" for t, n in manifest.counts.items())
    typer.echo(f"wrote {written} (schema {manifest.revision}; {counts})")


@app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="An archive written by `kabashoax backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds data")
    ] = False,
    index: Annotated[
        bool, typer.Option("--index/--no-index", help="Rebuild the search indexes from the restored vectors")
    ] = True,
) -> None:
    """Restore a backup into the configured database (an empty one unless --force), then rebuild the indexes.

    Stop the service first: it must not write while its database is replaced.
    """
    from knowledge_base.backup import BackupError
    from knowledge_base.backup import restore as read_backup

    try:
        manifest = read_backup(path, force=force)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    counts = ", ".join(f"{n} {t}" for t, n in manifest.counts.items())
    typer.echo(f"restored the backup of {manifest.created_at} (schema {manifest.revision}; {counts})")
    if index:
        from knowledge_base import progress
        from knowledge_base.db import session_scope
        from knowledge_base.search import rebuild_index

        with session_scope() as session, progress.task("rebuilding the search index"):
            size = rebuild_index(session)
        typer.echo(f"search index rebuilt: {size} passages")


if __name__ == "__main__":
    app()
