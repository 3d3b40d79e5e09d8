"""`kabashoax verdicts import` and `kabashoax claims match|calibrate|evaluate`: matching from a shell."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # registering the commands must not load the model stack (`kabashoax --help`)
    from knowledge_base import matching

verdicts_app = typer.Typer(
    help="Verdicts of the fact team and of trusted fact-checkers.", no_args_is_help=True
)
claims_app = typer.Typer(help="Matching citizens' claims against published verdicts.", no_args_is_help=True)


# Lines of stdin matched together (one embedding call): whatever is already waiting, up to this many.
STDIN_BATCH = 64


def default_dev_csv() -> Path:
    """The real dev sample in KABASHOAX_SHARED_DATA, else in the nearest `shared/data` above the repo
    (`../shared/data` beside a clone, `../../shared/data` beside a worktree)."""
    from knowledge_base.settings import PACKAGE_DIR

    shared = os.environ.get("KABASHOAX_SHARED_DATA")
    candidates = [Path(shared)] if shared else [d / "shared" / "data" for d in PACKAGE_DIR.parents[1:4]]
    base = next((c for c in candidates if c.is_dir()), candidates[0])
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


def _stdin_batches() -> Iterator[list[str]]:
    """Lines of stdin in batches of what is already waiting: a pipe of 600 forwards is embedded in a
    few big batches, while a person typing one claim at a time still gets each answer at once."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    while True:
        first = lines.get()
        if first is None:
            return
        batch, done = [first], False
        while len(batch) < STDIN_BATCH:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                done = True
                break
            batch.append(line)
        yield [line for line in batch if line.strip()]
        if done:
            return


@claims_app.command("match")
def claims_match(
    text: Annotated[
        str | None, typer.Argument(help="The claim; without it, one claim per line from stdin")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {query, verdict, candidates} as JSON")
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="Embedding threads [default: EMBEDDING_THREADS for one claim, every core for stdin]",
        ),
    ] = None,
) -> None:
    """Match a claim against published verdicts (stdin: JSON Lines out, models loaded once)."""
    from knowledge_base import embeddings, matching
    from knowledge_base.db import session_scope

    # Several stdin lines are embedded one text per thread: no thread waits on another, so this
    # degrades gracefully when another job takes a core (MEASURED.md: a wide OpenMP team does not).
    embeddings.configure_threads(threads or (None if text is not None else os.cpu_count() or 1))
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
        for batch in _stdin_batches():
            for result in matching.match_many(batch, session=session):
                typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
            session.commit()  # keep new embeddings; see verdicts published meanwhile (SQLite snapshot)
            sys.stdout.flush()


@claims_app.command("calibrate")
def claims_calibrate(
    csv_path: CsvOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the model [default: MATCH_MODEL_FILE]")
    ] = None,
) -> None:
    """Train the match model on the calibration split of the dev CSV and choose its thresholds."""
    from knowledge_base import matching, progress
    from knowledge_base.match_calibration import calibrate

    out = out or matching.model_file()
    with progress.task("calibrating the match model"):
        model = calibrate(_dev_csv(csv_path), out)
    typer.echo(f"wrote {out} ({model['trained_on']})")
    typer.echo(f"out-of-fold on the calibration split: {json.dumps(model['out_of_fold'])}")
    typer.echo(
        f"thresholds (stored with the model): auto {model['auto_threshold']}, "
        f"suggest {model['suggest_threshold']}"
    )


@claims_app.command("evaluate")
def claims_evaluate(
    csv_path: CsvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
) -> None:
    """Held-out figures (messages whose verdicts calibration never saw), with the model's thresholds."""
    from knowledge_base import matching
    from knowledge_base.match_calibration import evaluate
    from knowledge_base.settings import get_settings

    report = evaluate(_dev_csv(csv_path)).as_dict()
    model = matching.load_model()
    report["thresholds"] = {
        "auto": model.auto_threshold,
        "suggest": model.suggest_threshold,
        "auto_answer_min_words": get_settings().auto_answer_min_words,
        "model_file": str(matching.model_file()),
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
