"""`kabashoax sources ...` and `kabashoax ingest`: the operator's handle on trusted-feed ingestion.

Only typer and the source kinds are imported at start; each command imports its own work.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from knowledge_base.vocabulary import SourceKind

if TYPE_CHECKING:
    from rich.console import Console
    from sqlmodel import Session

    from knowledge_base.feeds import IngestReport
    from knowledge_base.sources import SourceStatus

log = logging.getLogger(__name__)
sources_app = typer.Typer(help="Trusted sources whose feeds are ingested.", no_args_is_help=True)


def _console() -> Console:
    """A console per call (sized to this terminal); no markup: feed errors are untrusted text."""
    from rich.console import Console

    return Console(highlight=False, markup=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    from rich.text import Text

    _console().print(Text("error: ", style="red") + Text(message))
    return typer.Exit(code)


def _span(seconds: float) -> str:
    """A duration in its largest whole unit: 40s, 5m, 3h, 2d."""
    for unit, name in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= unit:
            return f"{int(seconds // unit)}{name}"
    return f"{int(max(seconds, 0))}s"


def _ago(value: datetime | None, now: datetime) -> str:
    """A moment as a short distance from now ("5m ago", "in 2h", "now"): fits an 80-column row."""
    if value is None:
        return "never"
    seconds = (value - now).total_seconds()
    if abs(seconds) < 60:
        return "now"
    return f"in {_span(seconds)}" if seconds > 0 else f"{_span(-seconds)} ago"


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="Short slug, e.g. pos-kupang")],
    url: Annotated[str, typer.Option("--url", help="RSS/Atom feed URL")],
    outlet: Annotated[str, typer.Option("--outlet", help="Name shown to citizens in citations")],
    kind: Annotated[SourceKind, typer.Option("--kind")] = SourceKind.media,
    homepage: Annotated[str | None, typer.Option("--homepage")] = None,
    region: Annotated[str | None, typer.Option("--region")] = None,
    interval: Annotated[int, typer.Option("--interval", help="Minutes between polls")] = 60,
) -> None:
    """Register a trusted source."""
    from knowledge_base.db import session_scope
    from knowledge_base.sources import SourceError, add_source

    try:
        with session_scope() as session:
            add_source(
                name,
                feed_url=url,
                outlet=outlet,
                kind=kind,
                homepage=homepage,
                region=region,
                poll_interval_minutes=interval,
                session=session,
            )
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    _console().print(f"added source {name} ({url})")


@sources_app.command("list")
def sources_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per source (JSON Lines)")] = False,
) -> None:
    """Every source: on/off, last success, next poll, items stored this week, failures; then the errors."""
    from knowledge_base.db import session_scope
    from knowledge_base.models import utcnow
    from knowledge_base.sources import source_statuses

    now = utcnow()
    with session_scope() as session:
        rows = source_statuses(session=session, now=now)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(_status_json(row), ensure_ascii=False))
        return
    _print_statuses(rows, now)


def _status_json(row: SourceStatus) -> dict[str, object]:
    data = dict(row.__dict__)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    return data


def _print_statuses(rows: list[SourceStatus], now: datetime) -> None:
    """A table that fits 80 columns, then each source's last error on lines of its own (wrapped)."""
    from rich.table import Table
    from rich.text import Text

    table = Table("name", "on", "last ok", "next poll", "week", "total", "fails", box=None, pad_edge=False)
    table.columns[0].overflow = "fold"
    for column in table.columns[2:]:
        column.no_wrap = True
    for column in table.columns[4:]:
        column.justify = "right"
    for r in rows:
        fails = Text(str(r.error_count), style="red" if r.failing else "")
        if r.failing_long:
            fails.append(" !", style="bold red")
        table.add_row(
            r.name,
            "yes" if r.enabled else "no",
            _ago(r.last_ok_at, now),
            _ago(r.next_poll, now) if r.next_poll else "-",
            str(r.items_this_week),
            str(r.articles),
            fails,
        )
    console = _console()
    console.print(table)
    errors = [r for r in rows if r.last_error]
    if errors:
        console.print()
        console.print(Text("last errors:", style="bold"))
    for r in errors:
        state = f"last error {_ago(r.last_error_at, now)}" if r.last_error_at else "last error"
        if r.failing and r.failing_since is not None:
            polls = f"{r.error_count} poll{'s' if r.error_count > 1 else ''}"
            state = f"failing for {_span((now - r.failing_since).total_seconds())} ({polls}), {state}"
        if r.failing_long:
            state = "WARNING: " + state
        head = Text(f"{r.name}: {state}: ", style="red" if r.failing else "")
        console.print(head + Text((r.last_error or "")[:300]))
    console.print(
        Text(
            f"{len(rows)} sources; week = items stored in the last 7 days; ! = failing for too long",
            style="dim",
        )
    )


@sources_app.command("disable")
def sources_disable(name: str) -> None:
    """Stop polling a source (its articles stay searchable)."""
    _set_enabled(name, False)


@sources_app.command("enable")
def sources_enable(name: str) -> None:
    """Poll a source again."""
    _set_enabled(name, True)


def _set_enabled(name: str, enabled: bool) -> None:
    from knowledge_base.db import session_scope
    from knowledge_base.sources import SourceError, set_enabled

    try:
        with session_scope() as session:
            set_enabled(name, enabled, session=session)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    _console().print(f"source {name} {'enabled' if enabled else 'disabled'}")


@sources_app.command("sync")
def sources_sync(
    file: Annotated[
        Path | None, typer.Option("--file", help="Sources yaml (default: the bundled one)")
    ] = None,
) -> None:
    """Add/update sources from the yaml file; sources disabled by the operator stay disabled."""
    from knowledge_base.db import session_scope
    from knowledge_base.sources import SourceError, load_specs, sync_sources

    try:
        specs = load_specs(file)
        with session_scope() as session:
            report = sync_sources(specs, session=session)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    _console().print(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged"
    )


def _print_reports(reports: list[IngestReport]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        "source", "status", "new articles", "updated", "new passages", "duplicates", "skipped", "error"
    )
    table.columns[0].no_wrap = True
    for r in reports:
        style = {"error": "red", "warning": "yellow"}.get(r.status, "")
        table.add_row(
            r.source,
            Text(r.status, style=style),
            str(r.new_articles),
            str(r.updated),
            str(r.new_passages),
            str(r.duplicates),
            str(r.skipped),
            (r.error or "")[:160],
        )
    _console().print(table)


def index_new_passages(session: Session) -> int | None:
    """Embed and index passages lacking vectors, when the search part is installed (None otherwise)."""
    if importlib.util.find_spec("knowledge_base.search") is None:
        log.warning("knowledge_base.search is missing: new passages are stored but not indexed yet")
        return None
    from knowledge_base.search import sync_passages

    return sync_passages(session)


def _index(session: Session) -> None:
    """Index what was just stored; a failure here loses nothing (`kabashoax index sync` catches up)."""
    try:
        indexed = index_new_passages(session)
    except Exception as exc:  # the model or index failing must not hide that ingestion worked
        log.exception("indexing new passages failed")
        session.rollback()
        raise _fail(
            f"stored, but indexing failed ({type(exc).__name__}); run `kabashoax index sync`", 1
        ) from exc
    if indexed is None:
        _console().print("search index not updated: knowledge_base.search is not available")
    else:
        _console().print(f"indexed {indexed} passages")


def ingest(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only these (polled even if not due)")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A saved feed, ingested as --source NAME")
    ] = None,
    samples: Annotated[
        bool, typer.Option("--samples", help="Load the bundled sample feeds (offline)")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Poll every enabled source, due or not")] = False,
    index: Annotated[bool, typer.Option("--index/--no-index", help="Embed and index new passages")] = True,
    sync: Annotated[
        bool, typer.Option("--sync", help="First add/update sources from sources.yaml (for scheduled runs)")
    ] = False,
) -> None:
    """Ingest the feeds of all due sources (or --source NAME, --file PATH --source NAME, --samples).

    Exit status: 0 when at least one source was read (or none was due), 1 when every source tried
    failed, 2 for a usage error (unknown source, unreadable file). Failures are recorded on the source.
    """
    from knowledge_base.db import session_scope
    from knowledge_base.feeds import ingest_due, ingest_file, ingest_samples, ingest_sources
    from knowledge_base.jobs import passage_embedder
    from knowledge_base.sources import SourceError, get_source, load_specs, sync_sources

    source = source or []
    if file is not None and len(source) != 1:
        raise _fail("--file needs exactly one --source NAME to ingest it as")
    embed = passage_embedder(stop=lambda: False) if index else None
    with session_scope() as session:
        try:
            if sync:
                sync_sources(load_specs(), session=session)
            if samples:
                reports = ingest_samples(session=session)
            elif file is not None:
                reports = [ingest_file(file, get_source(source[0], session=session), session=session)]
            elif source:
                chosen = [get_source(n, session=session) for n in source]
                if unpollable := [s.name for s in chosen if not s.feed_url]:
                    raise SourceError(
                        f"no feed URL for {', '.join(unpollable)}: use --file PATH --source NAME"
                    )
                reports = ingest_sources(chosen, session=session, embed=embed)
            else:
                reports = ingest_due(session=session, force=force, embed=embed)
        except (SourceError, OSError) as exc:
            raise _fail(str(exc)) from exc
        session.commit()
        if not reports:
            _console().print(
                "no source is due (see `kabashoax sources list`; `sources sync` loads sources.yaml)"
            )
            return
        _print_reports(reports)
        if index and any(r.new_passages for r in reports):
            _index(session)
    if not any(r.ok for r in reports):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `kabashoax` app."""
    app.add_typer(sources_app, name="sources")
    app.command("ingest")(ingest)
