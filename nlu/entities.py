"""Entities from the regexes and lookup tables of `nlu/data/nlu.yml`, like Rasa's RegexEntityExtractor.

The fallback uses it, so entities (a PDAM, a kelurahan, a URL, a phone number) survive a Rasa outage.
"""

from __future__ import annotations

import re

from nlu.training_data import NluData


class EntityExtractor:
    """Case-insensitive matches on word boundaries; the longest match wins where two overlap."""

    def __init__(self, data: NluData) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for entity, patterns in data.regexes.items():
            self._patterns += [(entity, re.compile(rf"(?<!\w)(?:{p})(?!\w)", re.I)) for p in patterns]
        for entity, values in data.lookups.items():
            alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
            if alternatives:
                self._patterns.append((entity, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.I)))

    def extract(self, text: str) -> list[dict]:
        found = [
            {"entity": entity, "value": m.group(0), "start": m.start(), "end": m.end()}
            for entity, pattern in self._patterns
            for m in pattern.finditer(text)
        ]
        return without_overlaps(found)


def without_overlaps(entities: list[dict]) -> list[dict]:
    """Keeps the longest of overlapping matches (a URL, not the `pln` inside it), in text order."""
    ordered = sorted(entities, key=lambda e: (e["start"], -(e["end"] - e["start"])))
    kept: list[dict] = []
    for e in ordered:
        if not kept or e["start"] >= kept[-1]["end"]:
            kept.append(e)
    return kept
