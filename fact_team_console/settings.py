"""Settings of the staff console, from the environment or `.env` (prefix `CONSOLE_`)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from pydantic import Field, field_validator
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
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (uvicorn's own variable and syntax:
    # addresses and networks, comma-separated, or "*"). None by default: otherwise any client could
    # name its own address and escape the per-address login limit.
    forwarded_allow_ips: str = Field("", validation_alias="FORWARDED_ALLOW_IPS")
    min_password_length: int = 10
    queue_page_size: int = 50

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: str) -> str:
        """Refuse what uvicorn would silently read as a name that never matches (a typo, a /33, "*,x")."""
        items = [part.strip() for part in value.split(",") if part.strip()]
        if "*" in items and len(items) > 1:
            raise ValueError('FORWARDED_ALLOW_IPS: "*" trusts every client; give it alone')
        for item in items:
            if item != "*":
                try:
                    ipaddress.ip_network(item)
                except ValueError as exc:
                    raise ValueError(f"FORWARDED_ALLOW_IPS: {exc}") from None
        return ",".join(items)


@lru_cache
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
