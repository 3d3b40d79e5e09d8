"""The Rasa token: never empty, private to the owner, shared by every process using the same data dir."""

from __future__ import annotations

import stat
from pathlib import Path

from nlu.settings import NluSettings


def test_generated_token_is_stored_privately_and_reused(tmp_path: Path) -> None:
    first = NluSettings(data_dir=tmp_path).token()
    assert len(first) >= 24
    assert NluSettings(data_dir=tmp_path).token() == first, "another process reads the same token"
    assert stat.S_IMODE((tmp_path / "rasa-token").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["rasa-token"]


def test_rasa_token_from_the_environment_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RASA_TOKEN", "from-env")
    monkeypatch.setenv("NLU_DATA_DIR", str(tmp_path))
    assert NluSettings().token() == "from-env"
    assert not (tmp_path / "rasa-token").exists()


def test_generated_tokens_never_look_like_a_command_line_flag(tmp_path: Path) -> None:
    """`rasa run --auth-token -abc` would read the token as an option: generated tokens are hex."""
    for n in range(50):
        token = NluSettings(data_dir=tmp_path / str(n)).token()
        assert not token.startswith("-") and all(c in "0123456789abcdef" for c in token)
