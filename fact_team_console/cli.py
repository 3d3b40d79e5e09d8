"""Commands of the console: `kabashoax users add|list` and `kabashoax console`."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from knowledge_base.vocabulary import Role

users_app = typer.Typer(help="Staff accounts of the fact team console.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name (a-z, 0-9, . _ -)")],
    role: Annotated[Role, typer.Option("--role", help="checker, reviewer, comms or admin")],
    password: Annotated[
        str | None, typer.Option("--password", help="Prompted (with confirmation) when absent")
    ] = None,
) -> None:
    """Create a staff account; weak passwords are refused."""
    from fact_team_console.passwords import WeakPasswordError
    from fact_team_console.users import UserError, create_user
    from knowledge_base.db import migrate, session_scope

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    migrate()
    try:
        with session_scope() as session:
            user = create_user(name, role.value, password, session=session)
            typer.echo(f"created {user.username} ({user.role})")
    except (UserError, WeakPasswordError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@users_app.command("list")
def users_list() -> None:
    """Show staff accounts (never their password hashes)."""
    from fact_team_console.users import list_users
    from knowledge_base.db import migrate, session_scope

    migrate()
    with session_scope() as session:
        for user in list_users(session):
            state = "active" if user.active else "inactive"
            locked = f", locked until {user.locked_until:%Y-%m-%d %H:%M} UTC" if user.locked_until else ""
            typer.echo(f"{user.id:>4}  {user.username:<24} {user.role:<9} {state}{locked}")


def app_factory() -> str:
    """The combined app when the coordinator has composed it, else the console on its own."""
    try:
        module = importlib.import_module("kabashoax.web")
    except ImportError:
        return "fact_team_console.web:create_app"
    return "kabashoax.web:create_app" if hasattr(module, "create_app") else "fact_team_console.web:create_app"


def console(
    host: Annotated[str | None, typer.Option("--host", help="Default 127.0.0.1 (CONSOLE_HOST)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default 8000 (CONSOLE_PORT)")] = None,
) -> None:
    """Serve the fact team console (and, when composed, the whole web app)."""
    import uvicorn

    from fact_team_console.settings import get_console_settings
    from knowledge_base.db import migrate

    settings = get_console_settings()
    migrate()
    factory = app_factory()
    typer.echo(f"serving {factory} at http://{host or settings.host}:{port or settings.port}")
    uvicorn.run(
        factory,
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,  # uvicorn's default trusts any local client
    )


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `kabashoax` app."""
    app.add_typer(users_app, name="users")
    app.command("console")(console)
