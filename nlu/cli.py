"""`kabashoax nlu ...`: classify messages, train and serve Rasa, evaluate both classifiers."""

from __future__ import annotations

import json
import signal
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from nlu.client import NluClient

nlu_app = typer.Typer(help="Intent classification (Rasa, with an in-app fallback).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `kabashoax` app."""
    app.add_typer(nlu_app, name="nlu")


@nlu_app.command("parse")
def parse(
    text: str = typer.Argument(None, help="Message to classify; without it, one message per stdin line."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stdin mode always prints JSON Lines)."),
    fallback_only: bool = typer.Option(False, "--fallback-only", help="Skip Rasa, use the in-app one."),
) -> None:
    """Classify TEXT (or each line of stdin) into an intent with confidence, ranking and entities."""
    from nlu.client import NluClient  # late: loading the classifiers is for this command only

    client = NluClient(use_rasa=not fallback_only)
    try:
        _parse(client, text, as_json)
    finally:
        client.close()


def _parse(client: NluClient, text: str | None, as_json: bool) -> None:
    if text is None:
        for line in sys.stdin:
            if line.strip():
                typer.echo(json.dumps(client.parse_sync(line.rstrip("\n")).to_dict(), ensure_ascii=False))
        return
    if not text.strip():
        typer.echo("error: the text to classify is empty", err=True)
        raise typer.Exit(2)
    result = client.parse_sync(text)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    entities = ", ".join(f"{e['entity']}={e['value']}" for e in result.entities) or "-"
    typer.echo(f"{result.intent}  {result.confidence:.2f}  [{result.source}]  entities: {entities}")


@nlu_app.command("train")
def train(
    force: bool = typer.Option(False, "--force", help="Retrain even if a model for this data exists."),
) -> None:
    """Train the Rasa model (cached by a hash of config + data) and the in-app fallback."""
    from nlu import rasa_service
    from nlu.fallback import load_or_train

    load_or_train()
    typer.echo("fallback classifier: ready")
    try:
        model = rasa_service.train(force=force)
    except rasa_service.RasaNotInstalled as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except rasa_service.RasaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"rasa model: {model}")


@nlu_app.command("serve")
def serve(port: int = typer.Option(None, help="Port on 127.0.0.1 (default: the one in RASA_URL).")) -> None:
    """Train if needed and run the Rasa server on loopback with an auth token, until interrupted."""
    from nlu import rasa_service

    try:
        server = rasa_service.serve(rasa_service.train(), port=port)
    except (rasa_service.RasaNotInstalled, rasa_service.RasaError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Rasa ready at {server.url} in {server.started_in_s:.1f} s (log: {server.logfile})")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # `kill` stops Rasa too, not only Ctrl-C
    try:
        code = server.process.wait()
    except (KeyboardInterrupt, SystemExit):
        code = 0
    finally:
        server.stop()
    raise typer.Exit(code)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


@nlu_app.command("validate")
def validate() -> None:
    """Run `rasa data validate --fail-on-warnings` on the NLU project."""
    from nlu import rasa_service

    try:
        ok, output = rasa_service.validate()
    except rasa_service.RasaNotInstalled as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("rasa data validate: OK" if ok else output)
    raise typer.Exit(0 if ok else 1)


@nlu_app.command("evaluate")
def evaluate(
    rasa: bool = typer.Option(True, "--rasa/--no-rasa", help="Also Rasa (temporary server if none)."),
    misses: bool = typer.Option(False, "--misses", help="List every misclassified held-out message."),
) -> None:
    """Per-intent precision/recall/F1 and confusions on nlu/eval/heldout.yml, for Rasa and the fallback."""
    from nlu import evaluate as ev
    from nlu import rasa_service

    try:
        reports = ev.run(with_rasa=rasa)
    except rasa_service.RasaNotInstalled as exc:
        typer.echo(f"error: {exc} (use --no-rasa to evaluate the fallback alone)", err=True)
        raise typer.Exit(1) from exc
    for report in reports:
        typer.echo(report.render(show_misses=misses) + "\n")
