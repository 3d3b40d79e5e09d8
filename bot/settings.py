"""Settings of the citizen bot (channels, abuse limits), from env and `.env`."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge_base.settings import get_settings as get_kb_settings


class BotSettings(BaseSettings):
    """Every value can be set from the environment (upper-case alias) or a `.env` file."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    telegram_bot_token: str = Field("", alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_API_BASE_URL")
    telegram_webhook_secret: str = Field("", alias="TELEGRAM_WEBHOOK_SECRET")

    whatsapp_app_secret: str = Field("", alias="WHATSAPP_APP_SECRET")
    whatsapp_verify_token: str = Field("", alias="WHATSAPP_VERIFY_TOKEN")
    whatsapp_access_token: str = Field("", alias="WHATSAPP_ACCESS_TOKEN")
    whatsapp_phone_number_id: str = Field("", alias="WHATSAPP_PHONE_NUMBER_ID")
    whatsapp_api_base_url: str = Field("https://graph.facebook.com/v21.0", alias="WHATSAPP_API_BASE_URL")
    whatsapp_template_name: str = Field("kabashoax_update", alias="WHATSAPP_TEMPLATE_NAME")
    whatsapp_template_language: str = Field("id", alias="WHATSAPP_TEMPLATE_LANGUAGE")

    # Abuse handling: per-chat limit (the `limits` notation), a block list of pseudonyms, a size cap.
    rate_limit: str = Field("12/minute", alias="BOT_RATE_LIMIT")
    rate_limit_storage: str = Field("memory://", alias="BOT_RATE_LIMIT_STORAGE")
    blocked_pseudonyms: set[str] = Field(default_factory=set, alias="BOT_BLOCKED_PSEUDONYMS")
    max_message_chars: int = Field(4096, alias="BOT_MAX_MESSAGE_CHARS")
    # Webhook bodies above this are refused (413) before they are read whole; Telegram updates and
    # WhatsApp notifications are a few KiB.
    webhook_max_bytes: int = Field(256 * 1024, alias="BOT_WEBHOOK_MAX_BYTES", ge=1024)

    # NLU below this confidence is treated as "not understood".
    min_intent_confidence: float = Field(0.5, alias="BOT_MIN_INTENT_CONFIDENCE")

    # Notifier (outbox): lease per claimed row, batch size, retry backoff, give-up threshold.
    notify_lease_s: float = Field(60.0, alias="BOT_NOTIFY_LEASE_S")
    notify_batch: int = Field(20, alias="BOT_NOTIFY_BATCH")
    notify_poll_s: float = Field(2.0, alias="BOT_NOTIFY_POLL_S")
    notify_backoff_base_s: float = Field(5.0, alias="BOT_NOTIFY_BACKOFF_BASE_S")
    notify_backoff_max_s: float = Field(3600.0, alias="BOT_NOTIFY_BACKOFF_MAX_S")
    notify_max_attempts: int = Field(8, alias="BOT_NOTIFY_MAX_ATTEMPTS")
    # Sends in flight at once (they overlap the channel's latency; the pace below still holds).
    notify_concurrency: int = Field(8, alias="BOT_NOTIFY_CONCURRENCY", ge=1, le=64)
    # Broadcast limits (0 = none): Telegram ~30/s overall and ~20/min into one group or channel,
    # WhatsApp Cloud API 80/s per business number; kept below them to leave room for replies.
    telegram_max_per_s: float = Field(25.0, alias="BOT_TELEGRAM_MAX_PER_S", ge=0)
    telegram_chat_max_per_min: float = Field(20.0, alias="BOT_TELEGRAM_CHAT_MAX_PER_MIN", ge=0)
    whatsapp_max_per_s: float = Field(60.0, alias="BOT_WHATSAPP_MAX_PER_S", ge=0)

    # Replies stored but not delivered this long after processing are sent by the notifier loop,
    # unless they are older than the max age (a day-old answer would confuse more than help).
    resend_after_s: float = Field(60.0, alias="BOT_RESEND_AFTER_S")
    resend_max_age_s: float = Field(6 * 3600.0, alias="BOT_RESEND_MAX_AGE_S")

    @property
    def claim_min_words(self) -> int:
        """The knowledge base's `forward_min_words` (FORWARD_MIN_WORDS): every word rule lives there."""
        return get_kb_settings().forward_min_words

    @property
    def pseudonym_key(self) -> bytes:
        """The shared secret key: pseudonyms cannot be recomputed from a phone number without it."""
        return get_kb_settings().secret_key.encode()

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> BotSettings:
        if get_kb_settings().environment == "production":
            if self.telegram_bot_token and not self.telegram_webhook_secret:
                raise ValueError("TELEGRAM_WEBHOOK_SECRET must be set in production")
            if self.whatsapp_access_token and not self.whatsapp_app_secret:
                raise ValueError("WHATSAPP_APP_SECRET must be set in production")
        return self


@lru_cache
def get_settings() -> BotSettings:
    """The process-wide bot settings; tests call `get_settings.cache_clear()` after changing the env."""
    return BotSettings()
