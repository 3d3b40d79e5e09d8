"""Settings of the NLU part: where Rasa runs, how long the bot waits for it, when to give up on it."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge_base.settings import get_settings as get_kb_settings

PROJECT_DIR = Path(__file__).resolve().parent
REPO_DIR = PROJECT_DIR.parent


class NluSettings(BaseSettings):
    """Every value can be set from the environment (upper-case alias) or a `.env` file."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    rasa_url: str = Field("http://127.0.0.1:5005", alias="RASA_URL")
    # Unset: a random token is created once and kept in the data dir, shared by server and client.
    rasa_token: str | None = Field(None, alias="RASA_TOKEN")
    rasa_venv: Path = Field(REPO_DIR / ".venv-rasa", alias="RASA_VENV")
    # The bot answers a citizen within a second even when Rasa hangs: that is the whole budget for it.
    timeout_s: float = Field(0.8, alias="NLU_TIMEOUT_S")
    breaker_failures: int = Field(3, alias="NLU_BREAKER_FAILURES")
    breaker_cooldown_s: float = Field(30.0, alias="NLU_BREAKER_COOLDOWN_S")
    # Below this confidence the in-app fallback answers `nlu_fallback` (a knowledge-base question);
    # the same value as the FallbackClassifier threshold in nlu/config.yml.
    fallback_threshold: float = Field(0.30, alias="NLU_FALLBACK_THRESHOLD")
    max_chars: int = 4000  # longer texts are cut before classification (chain messages fit easily)
    start_timeout_s: float = Field(180.0, alias="RASA_START_TIMEOUT_S")

    project_dir: Path = PROJECT_DIR
    data_dir: Path | None = Field(None, alias="NLU_DATA_DIR")  # default: <KABASHOAX_DATA_DIR>/nlu

    @property
    def work_dir(self) -> Path:
        # Absolute: Rasa runs with this directory as its working directory.
        return (self.data_dir or get_kb_settings().data_dir / "nlu").resolve()

    @property
    def models_dir(self) -> Path:
        return self.work_dir / "models"

    @property
    def training_file(self) -> Path:
        return self.project_dir / "data" / "nlu.yml"

    @property
    def heldout_file(self) -> Path:
        return self.project_dir / "eval" / "heldout.yml"

    def token(self) -> str:
        """The Rasa auth token: RASA_TOKEN, else one generated on first use and stored (mode 0600)."""
        if self.rasa_token:
            return self.rasa_token
        path = self.work_dir / "rasa-token"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".rasa-token.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(24))  # hex: a leading "-" would read as a CLI flag
            try:  # link() never overwrites: two processes starting together end up with the same token
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()


@lru_cache
def get_settings() -> NluSettings:
    """Process-wide NLU settings; tests call `get_settings.cache_clear()` after changing the env."""
    return NluSettings()
