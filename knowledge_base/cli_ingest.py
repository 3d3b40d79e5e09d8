"""`kabashoax sources ...` and `kabashoax ingest`: the operator's handle on trusted-feed ingestion."""

from __future__ import annotations

import importlib.util
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import func
from sqlmodel import Session, select

from knowledge_base.db import session_scope
from knowledge_base.feeds import (
    IngestReport,
    ingest_due,
    ingest_file,
    ingest_samples,
    ingest_sources,
)
from knowledge_base.models import Article, SourceKind
from knowledge_base.sources import (
    SourceError,
    add_source,
    get_source,
    list_sources,
    load_specs,
    next_poll_at,
    set_enabled,
    sync_sources,
)

log = logging.getLogger(__name__)
sources_app = typer.Typer(help="Trusted sources whose feeds are ingested.", no_args_is_help=True)


def _console() -> Console:
    """A console per call (sized to this terminal); no markup: feed errors are untrusted text."""
    return Console(highlight=False, markup=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    _console().print(Text("error: ", style="red") + Text(message))
    return typer.Exit(code)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


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
def sources_list() -> None:
    """All sources with their last poll, next poll, article count and last error."""
    with session_scope() as session:
        counts = dict(session.exec(select(Article.source_id, func.count()).group_by(Article.source_id)).all())
        table = Table(
            "name", "outlet", "kind", "on", "articles", "last poll", "next poll", "errors", "last error"
        )
        table.columns[0].no_wrap = True
        table.columns[1].max_width = 22
        for s in list_sources(session=session):
            table.add_row(
                s.name,
                s.outlet,
                s.kind,
                "yes" if s.enabled else "no",
                str(counts.get(s.id, 0)),
                _when(s.last_polled_at),
                _when(next_poll_at(s)) if s.enabled and s.feed_url else "never",
                str(s.error_count),
                (s.last_error or "")[:120],
            )
    _console().print(table)


@sources_app.command("disable")
def sources_disable(name: str) -> None:
    """Stop polling a source (its articles stay searchable)."""
    _set_enabled(name, False)


@sources_app.command("enable")
def sources_enable(name: str) -> None:
    """Poll a source again."""
    _set_enabled(name, True)


def _set_enabled(name: str, enabled: bool) -> None:
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
    source = source or []
    if file is not None and len(source) != 1:
        raise _fail("--file needs exactly one --source NAME to ingest it as")
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
                reports = ingest_sources(chosen, session=session)
            else:
                reports = ingest_due(session=session, force=force)
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
