"""Bot commands: `kabashoax chat`, `kabashoax bot telegram`, `kabashoax bot notify [--once]`."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid

import typer

from bot.dialogue import Incoming, Reply, parse_command
from bot.edge import clean_text

log = logging.getLogger(__name__)
bot_app = typer.Typer(help="Citizen bot: Telegram polling and the notification sender.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `kabashoax` app."""
    app.command("chat")(chat)
    app.add_typer(bot_app, name="bot")


def _print(replies: list[Reply], choices: dict[str, str]) -> None:
    choices.clear()
    for reply in replies:
        typer.echo(typer.style("bot> ", fg="green") + reply.text)
        for i, b in enumerate(reply.buttons, 1):
            key = f"#{i}"
            choices[key] = b.data
            typer.echo(f"      [{key}] {b.label}")


def chat() -> None:
    """Chat with the bot core in the terminal (same conversation as Telegram). Type #N to press a button."""
    from bot.core import Envelope
    from bot.runtime import get_core
    from knowledge_base import logs
    from knowledge_base.settings import get_settings as kb_settings

    log_file = kb_settings().data_dir / "logs" / "chat.log"
    logs.configure("chat", log_file=log_file)  # the terminal is the conversation: log lines go to the file
    core = get_core()
    choices: dict[str, str] = {}
    address = f"terminal:{uuid.getnode()}"
    typer.echo("Ketik pesan (Ctrl-D untuk keluar). Tombol: ketik #1, #2, …")
    typer.echo(f"(log: {log_file})")

    async def show(_address: str, replies: list[Reply]) -> None:
        _print(replies, choices)

    while True:
        try:
            line = clean_text(input("anda> "))  # bytes that are not UTF-8 arrive as lone surrogates
        except (EOFError, KeyboardInterrupt):
            typer.echo("")
            return
        if line.strip() in choices:
            incoming = Incoming(button=choices[line.strip()])
        else:
            command, rest = parse_command(line.strip())
            incoming = Incoming(text=rest, command=command)
        env = Envelope("cli", f"cli-{uuid.uuid4().hex}", address, incoming, {"kind": "cli"})
        asyncio.run(core.handle(env, show))


@bot_app.command("telegram")
def telegram_polling() -> None:
    """Run the Telegram bot by long polling (TELEGRAM_BOT_TOKEN; for development)."""
    from telegram import Update

    from bot.runtime import get_core
    from bot.settings import get_settings
    from bot.telegram import build_application
    from knowledge_base import logs

    settings = get_settings()
    if not settings.telegram_bot_token:
        raise typer.BadParameter("set TELEGRAM_BOT_TOKEN")
    logs.configure("telegram")
    application = build_application(settings, get_core(), polling=True)
    application.run_polling(allowed_updates=Update.ALL_TYPES)


@bot_app.command("set-webhook")
def set_webhook(url: str = typer.Argument(..., help="Public HTTPS URL of /webhooks/telegram")) -> None:
    """Point Telegram at the web app's webhook, with TELEGRAM_WEBHOOK_SECRET as its secret token."""
    from telegram import Update

    from bot.settings import get_settings
    from bot.telegram import make_bot

    settings = get_settings()
    if not settings.telegram_bot_token or not settings.telegram_webhook_secret:
        raise typer.BadParameter("set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET")

    async def register() -> None:
        async with make_bot(settings) as tg:
            await tg.set_webhook(
                url, secret_token=settings.telegram_webhook_secret, allowed_updates=Update.ALL_TYPES
            )

    asyncio.run(register())
    typer.echo(f"Telegram now delivers updates to {url}")


@bot_app.command("notify")
def notify(once: bool = typer.Option(False, "--once", help="Send what is due now, then exit.")) -> None:
    """Deliver the outbox (verdicts, corrections, digests, channel posts), paced, with retries."""
    from knowledge_base import logs, metrics

    logs.configure("notifier")
    if not once:  # counted in kabashoax_processes; its own METRICS_PORT in a container (README, Docker)
        metrics.report_process("notifier")
    asyncio.run(_notify(once))


async def _notify(once: bool) -> None:
    from bot.delivery import started_senders
    from bot.outbox import Notifier

    notifier = Notifier(await started_senders())
    if once:
        total = 0
        while done := await notifier.run_once():
            total += done
        late = await notifier.resend_replies()
        typer.echo(f"{total} notification(s) attempted, {late} undelivered repl(ies) re-sent")
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("notifier running for channels: %s", ", ".join(notifier.senders) or "none")
    await notifier.run_forever(stop)
