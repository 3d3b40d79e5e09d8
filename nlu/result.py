"""The result of classifying one citizen message, whichever classifier produced it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Source = Literal["rasa", "fallback"]
FALLBACK_INTENT = "nlu_fallback"  # "not sure": the bot treats the message as a knowledge-base question


@dataclass
class NluResult:
    intent: str
    confidence: float
    ranking: list[dict] = field(default_factory=list)  # [{"name", "confidence"}], best first
    entities: list[dict] = field(default_factory=list)  # [{"entity", "value", "start", "end"}]
    source: Source = "fallback"

    def to_dict(self) -> dict:
        return asdict(self)
