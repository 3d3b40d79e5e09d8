"""`python -m bot notify|telegram|chat`: the bot's processes without loading the other parts' CLIs
(the notifier needs no embedding model, so it starts in a second instead of loading torch)."""

from __future__ import annotations

from bot.cli import bot_app, chat

bot_app.command("chat")(chat)

if __name__ == "__main__":
    bot_app()
