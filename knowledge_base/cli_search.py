"""`kabashoax search`, `kabashoax ask` and `kabashoax index …`: the search part from a shell."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from knowledge_base.search import IndexCheck

console = Console()
index_app = typer.Typer(help="The passage search indexes (FAISS + BM25) kept in step with the database.")


def search(
    text: Annotated[str, typer.Argument(help="Question or claim, in any register")],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many passages")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout")] = False,
) -> None:
    """Search the passages of trusted sources (hybrid BM25 + embeddings)."""
    from rich.table import Table

    from knowledge_base.dates import format_date
    from knowledge_base.db import session_scope
    from knowledge_base.search import search_passages

    with session_scope() as session:
        hits = search_passages(text, k=k, session=session)
    if as_json:
        rows = [
            {**asdict(h), "published_at": h.published_at.isoformat() if h.published_at else None}
            for h in hits
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not hits:
        console.print("no passage matches")
        return
    table = Table("score", "title", "outlet", "date", "link", show_lines=True)
    for hit in hits:
        table.add_row(f"{hit.score:.2f}", hit.title, hit.outlet, format_date(hit.published_at), hit.url)
    console.print(table)


def ask(question: Annotated[str, typer.Argument(help="A citizen's question")]) -> None:
    """Print the answer a citizen would get (exit 1 when the knowledge base has none)."""
    from knowledge_base.answer import answer_question
    from knowledge_base.db import session_scope

    with session_scope() as session:
        answer = answer_question(question, session=session)
    typer.echo(answer.text)
    if not answer.found:
        raise typer.Exit(1)


def _print_check(report: IndexCheck) -> None:
    console.print(
        f"passages in database: {report.db_count}, in index: {report.index_count}, "
        f"without vector: {report.without_embedding}",
        highlight=False,
    )
    if report.missing_from_index:
        console.print(
            f"missing from index: {len(report.missing_from_index)} {report.missing_from_index[:10]}"
        )
    if report.stale_in_index:
        console.print(
            f"in index but not in database: {len(report.stale_in_index)} {report.stale_in_index[:10]}"
        )
    if report.model_mismatch:
        console.print(f"[red]{report.model_mismatch}[/red]: run `kabashoax index rebuild`")
    console.print("[green]ok[/green]" if report.ok else "[red]drift[/red]")


@index_app.command("check")
def index_check(
    repair: Annotated[
        bool, typer.Option("--repair", help="Embed missing vectors and fix the id sets")
    ] = False,
) -> None:
    """Compare database and index; exit 1 if they differ (after --repair: if they still differ)."""
    from knowledge_base.db import session_scope
    from knowledge_base.search import check_index

    with session_scope() as session:
        report = check_index(session, repair=repair)
    _print_check(report)
    if not report.ok:
        raise typer.Exit(1)


@index_app.command("sync")
def index_sync() -> None:
    """Embed passages lacking vectors and add new passages to the index."""
    from knowledge_base.db import session_scope
    from knowledge_base.search import sync_passages

    with session_scope() as session:
        count = sync_passages(session)
    console.print(f"indexed {count} passages", highlight=False)


@index_app.command("rebuild")
def index_rebuild(
    reembed: Annotated[bool, typer.Option("--reembed", help="Embed every passage again")] = False,
) -> None:
    """Rebuild the indexes from stored vectors (re-embedding all when the model changed)."""
    from knowledge_base.db import session_scope
    from knowledge_base.search import rebuild_index

    with session_scope() as session:
        count = rebuild_index(session, reembed=reembed)
    console.print(f"rebuilt the passage index with {count} passages", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `kabashoax` app."""
    app.command("search")(search)
    app.command("ask")(ask)
    app.add_typer(index_app, name="index")
