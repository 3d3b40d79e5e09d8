"""`kabashoax verdicts import` and `kabashoax claims match|calibrate|evaluate`: matching from a shell."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from knowledge_base import matching

verdicts_app = typer.Typer(
    help="Verdicts of the fact team and of trusted fact-checkers.", no_args_is_help=True
)
claims_app = typer.Typer(help="Matching citizens' claims against published verdicts.", no_args_is_help=True)


def default_dev_csv() -> Path:
    """The real dev sample beside the repository (`../shared/data`), or under KABASHOAX_SHARED_DATA."""
    from knowledge_base.settings import PACKAGE_DIR

    shared = os.environ.get("KABASHOAX_SHARED_DATA")
    base = Path(shared) if shared else PACKAGE_DIR.parents[1] / "shared" / "data"
    return base / "factchecks" / "turnbackhoax_dev.csv"


CsvOption = Annotated[
    Path | None, typer.Option("--csv", help="Dev CSV with a `message` column [default: shared dev sample]")
]


def _dev_csv(path: Path | None) -> Path:
    path = path or default_dev_csv()
    if not path.is_file():
        typer.echo(f"error: {path} not found (give --csv)", err=True)
        raise typer.Exit(2)
    return path


@verdicts_app.command("import")
def verdicts_import(
    file: Annotated[Path, typer.Argument(help="CSV with claim,rating,summary,url,published_at,source")],
    with_messages: Annotated[
        bool, typer.Option("--with-messages", help="Also index the `message` column as a circulated text")
    ] = False,
) -> None:
    """Import past fact-checks; bad rows are listed by line and skipped, re-importing adds nothing."""
    from knowledge_base import matching, progress
    from knowledge_base.db import session_scope
    from knowledge_base.verdict_import import ImportFileError, import_csv

    try:
        with session_scope() as session, progress.task("importing verdicts"):
            report = import_csv(file, session=session, with_messages=with_messages)
    except ImportFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for error in report.errors:
        typer.echo(f"line {error.line}: {error.message}", err=True)
    typer.echo(
        f"{report.added} verdicts added, {report.already_known} already known, {len(report.errors)} bad rows"
    )
    if report.added:
        with session_scope() as session, progress.task("indexing verdict texts"):
            size = matching.sync(session)
        typer.echo(f"verdict index ready: {size} texts")


def _print_result(result: matching.MatchResult) -> None:
    typer.echo(
        f"decision: {result.decision}" + (" (exact/near-exact forward)" if result.via == "duplicate" else "")
    )
    for n, c in enumerate(result.candidates, 1):
        mark = "*" if result.verdict is not None and c.verdict_id == result.verdict.verdict_id else " "
        typer.echo(f"{mark}{n}. [{c.score:.2f}] #{c.verdict_id} {c.rating}: {c.claim}")
        if c.url:
            typer.echo(f"      {c.url}")


@claims_app.command("match")
def claims_match(
    text: Annotated[
        str | None, typer.Argument(help="The claim; without it, one claim per line from stdin")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {query, verdict, candidates} as JSON")
    ] = False,
) -> None:
    """Match a claim against published verdicts (stdin: JSON Lines out, models loaded once)."""
    from knowledge_base import matching
    from knowledge_base.db import session_scope

    with session_scope() as session:
        if text is not None:
            if not text.strip():
                typer.echo("error: empty claim", err=True)
                raise typer.Exit(2)
            result = matching.match_claim(text, session=session)
            if as_json:
                typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
            else:
                _print_result(result)
            return
        for line in sys.stdin:
            if line.strip():
                result = matching.match_claim(line, session=session)
                session.commit()  # keep new embeddings; see verdicts published meanwhile (SQLite snapshot)
                typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
                sys.stdout.flush()


@claims_app.command("calibrate")
def claims_calibrate(
    csv_path: CsvOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the model [default: the bundled one]")
    ] = None,
) -> None:
    """Train the match model on the calibration split of the dev CSV and print the chosen thresholds."""
    from knowledge_base import matching, progress
    from knowledge_base.match_calibration import calibrate

    out = out or matching.MODEL_FILE
    with progress.task("calibrating the match model"):
        model = calibrate(_dev_csv(csv_path), out)
    typer.echo(f"wrote {out} ({model['trained_on']})")
    typer.echo(f"out-of-fold on the calibration split: {json.dumps(model['out_of_fold'])}")
    typer.echo(
        f"chosen thresholds: MATCH_AUTO_THRESHOLD={model['auto_threshold']} "
        f"MATCH_SUGGEST_THRESHOLD={model['suggest_threshold']}"
    )


@claims_app.command("evaluate")
def claims_evaluate(
    csv_path: CsvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
) -> None:
    """Held-out figures (messages whose verdicts calibration never saw), with the thresholds in settings."""
    from knowledge_base.match_calibration import evaluate
    from knowledge_base.settings import get_settings

    report = evaluate(_dev_csv(csv_path)).as_dict()
    settings = get_settings()
    report["thresholds"] = {
        "auto": settings.match_auto_threshold,
        "suggest": settings.match_suggest_threshold,
        "min_words": settings.match_min_words,
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    for key, value in report.items():
        typer.echo(f"{key}: {value}")


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `kabashoax` app."""
    app.add_typer(verdicts_app, name="verdicts")
    app.add_typer(claims_app, name="claims")
