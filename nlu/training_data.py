"""Reads Rasa NLU YAML (`nlu/data/nlu.yml`, `nlu/eval/heldout.yml`) for the in-app fallback and evaluation.

The app cannot import Rasa (its own virtualenv), and both classifiers must learn from the same file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Rasa's inline entity annotations: [text](entity), [text](entity:synonym), [text]{"entity": ...}
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


class NluDataError(ValueError):
    """The NLU YAML file is missing or malformed; the message says where."""


@dataclass
class NluData:
    examples: list[tuple[str, str]] = field(default_factory=list)  # (text, intent)
    regexes: dict[str, list[str]] = field(default_factory=dict)  # entity -> patterns
    lookups: dict[str, list[str]] = field(default_factory=dict)  # entity -> values

    @property
    def intents(self) -> list[str]:
        return sorted({intent for _, intent in self.examples})


def strip_annotations(text: str) -> str:
    """`kapan [PDAM](organisation) ...` -> `kapan PDAM ...` (what the citizen actually typed)."""
    return _ANNOTATION.sub(lambda m: m.group("text"), text)


def clean(text: str) -> str:
    """NFKC (folds the 𝘽𝙤𝙡𝙙 letters of forwarded scams), lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _items(block: object, where: str) -> list[str]:
    if not isinstance(block, str):
        raise NluDataError(f"{where}: `examples` must be a `|` block of `- ` lines")
    out = []
    for n, line in enumerate(block.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith("- "):
            raise NluDataError(f"{where}, example line {n}: expected '- text', got {line[:40]!r}")
        out.append(line[2:].strip())
    return out


def load(path: Path) -> NluData:
    """Parses one NLU file; raises NluDataError with the offending entry on bad input."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise NluDataError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
        raise NluDataError(f"{path}: expected a top-level `nlu:` list")
    data = NluData()
    for i, entry in enumerate(doc["nlu"], 1):
        where = f"{path}, nlu entry {i}"
        if not isinstance(entry, dict):
            raise NluDataError(f"{where}: expected a mapping")
        if "intent" in entry:
            texts = _items(entry.get("examples"), where)
            data.examples += [(strip_annotations(t), str(entry["intent"])) for t in texts]
        elif "regex" in entry:
            data.regexes.setdefault(str(entry["regex"]), []).extend(_items(entry.get("examples"), where))
        elif "lookup" in entry:
            data.lookups.setdefault(str(entry["lookup"]), []).extend(_items(entry.get("examples"), where))
    if not data.examples:
        raise NluDataError(f"{path}: no intent examples")
    return data


def file_hash(*paths: Path) -> str:
    """Content hash of the given files (and of every file under given directories), in sorted order."""
    digest = hashlib.sha256()
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
        else:
            files.append(p)
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]
