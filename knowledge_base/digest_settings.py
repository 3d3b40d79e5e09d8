"""Settings of the comms office's output: digests, their schedule, the Telegram channel, public pages.

Read by the knowledge base (drafting, rendering, enqueueing), the console (composer, public pages,
cards) and, in the bot's delivery phase, by the notifier; so they live here, not in one consumer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TemplateField = Literal["title", "period", "count", "top", "intro", "link"]
DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


class DigestSettings(BaseSettings):
    """Every value can be set from the environment (the upper-case alias) or a `.env` file."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Public pages: the address citizens reach them at (links in digests, feeds, cards, JSON-LD).
    public_base_url: str = Field("http://127.0.0.1:8000", alias="PUBLIC_BASE_URL")
    team_name: str = Field("Tim Cek Fakta Kota Kupang", alias="PUBLIC_TEAM_NAME")
    site_name: str = Field("Cek Fakta Kota Kupang", alias="PUBLIC_SITE_NAME")
    page_size: int = Field(20, alias="PUBLIC_PAGE_SIZE", ge=5, le=100)
    feed_size: int = Field(50, alias="PUBLIC_FEED_SIZE", ge=1, le=500)
    # A TrueType font for the shareable cards; Pillow's bundled font when the file is missing.
    card_font: Path = Field(DEFAULT_FONT, alias="PUBLIC_CARD_FONT")

    # Digests.
    title: str = Field("Kabar Cek Fakta Kupang", alias="DIGEST_TITLE")
    period_days: int = Field(7, alias="DIGEST_PERIOD_DAYS", ge=1, le=92)
    max_items: int = Field(10, alias="DIGEST_MAX_ITEMS", ge=1, le=20)
    # The automatic weekly draft: on/off, weekday and time in Kupang (WITA, UTC+8).
    auto_draft: bool = Field(True, alias="DIGEST_AUTO_DRAFT")
    day_of_week: str = Field("mon", alias="DIGEST_DAY_OF_WEEK")
    time_wita: str = Field("08:00", alias="DIGEST_TIME")

    # The city's Telegram channel (e.g. "@kabarcekfaktakupang" or "-1001234567890"); empty: no posts.
    telegram_channel_id: str = Field("", alias="TELEGRAM_CHANNEL_ID")
    channel_post_verdicts: bool = Field(False, alias="TELEGRAM_CHANNEL_POST_VERDICTS")

    # WhatsApp outside the 24-hour window: an approved template, its parameters in order, and its
    # body text as approved by Meta ({{1}}, {{2}}, …), used for the console preview.
    whatsapp_template: str = Field("kabar_cek_fakta", alias="DIGEST_WHATSAPP_TEMPLATE")
    whatsapp_template_language: str = Field("id", alias="DIGEST_WHATSAPP_TEMPLATE_LANGUAGE")
    whatsapp_template_params: list[TemplateField] = Field(
        ["period", "count", "top", "link"], alias="DIGEST_WHATSAPP_TEMPLATE_PARAMS"
    )
    whatsapp_template_body: str = Field(
        "Kabar Cek Fakta Kupang {{1}}: {{2}} kabar sudah kami periksa. Teratas: {{3}}. Baca semuanya: {{4}}",
        alias="DIGEST_WHATSAPP_TEMPLATE_BODY",
    )
    # The template carries one quick-reply button (index 0) that unsubscribes.
    whatsapp_unsubscribe_button: bool = Field(True, alias="DIGEST_WHATSAPP_UNSUBSCRIBE_BUTTON")

    @field_validator("public_base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("PUBLIC_BASE_URL must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("day_of_week")
    @classmethod
    def _weekday(cls, value: str) -> str:
        value = value.strip().lower()[:3]
        if value not in WEEKDAYS:
            raise ValueError(f"DIGEST_DAY_OF_WEEK must be one of {', '.join(WEEKDAYS)}")
        return value

    @field_validator("time_wita")
    @classmethod
    def _time(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError("DIGEST_TIME must be HH:MM (Kupang time)")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @property
    def weekday_index(self) -> int:
        return WEEKDAYS.index(self.day_of_week)

    @property
    def hour_minute(self) -> tuple[int, int]:
        hour, minute = self.time_wita.split(":")
        return int(hour), int(minute)


@lru_cache
def get_digest_settings() -> DigestSettings:
    """The process-wide values; tests call `get_digest_settings.cache_clear()` after changing the env."""
    return DigestSettings()
