"""The word-count rules live once, in the knowledge base settings, and are counted one way."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bot.dialogue import Incoming, Intent, Need, route
from bot.settings import BotSettings
from knowledge_base.near_duplicate import word_count
from knowledge_base.settings import get_settings

STATE: dict[str, object] = {"session": "abcd1234"}


Apply = Callable[..., None]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Apply]:
    """Change knowledge-base settings through the environment, as an operator would."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


def test_emoji_punctuation_and_forward_markers_are_no_words() -> None:
    assert word_count("Fwd: 👉👉 HOAKS!!! 🙏") == 1
    assert word_count("air   PDAM, mati?") == 3


def test_a_claim_too_short_to_check_is_counted_in_words_not_tokens(settings: Apply) -> None:
    assert get_settings().check_min_words == 3
    short = route(STATE, Incoming(command="cek", text="hoaks 👉 !!! ??"), None)
    assert short.say == "claim_too_short"  # four whitespace tokens, one word
    assert route(STATE, Incoming(command="cek", text="air PDAM diracun"), None).need is Need.match
    settings(CHECK_MIN_WORDS="4")
    assert route(STATE, Incoming(command="cek", text="air PDAM diracun"), None).say == "claim_too_short"


def test_unrecognised_long_text_is_a_forward_from_the_knowledge_base_setting(settings: Apply) -> None:
    text = Incoming(text="katanya besok listrik padam satu kota kupang")  # 7 words
    unsure = Intent("nlu_fallback", 0.9)
    assert route(STATE, text, unsure).need is Need.answer
    settings(FORWARD_MIN_WORDS="7")
    assert route(STATE, text, unsure).need is Need.match
    assert BotSettings().claim_min_words == 7  # what bot/core.py passes on: the same setting
