"""Settings of the staff console, from the environment or `.env` (prefix `CONSOLE_`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """Session, login-throttling and serving values; secrets come from `knowledge_base.settings`."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    session_cookie: str = "kabashoax_session"
    session_max_age_s: int = 8 * 3600
    # A username is locked for `lockout_minutes` after this many failures in a row.
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    # Attempts from one client address, whatever the usernames (`limits` notation).
    login_rate_per_ip: str = "20/5 minutes"
    # Extra origins allowed to POST (e.g. the public https origin behind a reverse proxy).
    trusted_origins: list[str] = []
    min_password_length: int = 10
    queue_page_size: int = 50


@lru_cache
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
