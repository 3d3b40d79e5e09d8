"""Held-out evaluation of both classifiers: per-intent precision/recall/F1 and the most common confusions.

The held-out file (nlu/eval/heldout.yml) is never trained on; `nlu_fallback` counts as a miss.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
from sklearn.metrics import classification_report

from nlu.client import result_from_rasa
from nlu.fallback import get_fallback
from nlu.result import FALLBACK_INTENT, NluResult
from nlu.settings import NluSettings, get_settings
from nlu.training_data import load

Classify = Callable[[list[str]], list[NluResult]]


@dataclass
class Report:
    name: str
    n: int
    accuracy: float
    abstained: int  # answered nlu_fallback
    per_intent: str  # sklearn's classification_report table
    confusions: list[tuple[str, str, int]] = field(default_factory=list)  # (true, predicted, count)
    misses: list[tuple[str, str, float, str]] = field(default_factory=list)  # (true, predicted, conf, text)
    seconds: float = 0.0

    def render(self, show_misses: bool = False) -> str:
        lines = [
            f"== {self.name}: accuracy {self.accuracy:.3f} on {self.n} held-out messages "
            f"({self.abstained} answered {FALLBACK_INTENT}; {self.seconds:.1f} s)",
            self.per_intent.rstrip(),
            "confusions (true -> predicted: count):",
        ]
        lines += [f"  {t} -> {p}: {c}" for t, p, c in self.confusions] or ["  none"]
        if show_misses:
            lines += ["misses:"] + [f"  [{t} -> {p} {c:.2f}] {x[:90]}" for t, p, c, x in self.misses]
        return "\n".join(lines)


def evaluate(name: str, classify: Classify, examples: list[tuple[str, str]]) -> Report:
    texts = [t for t, _ in examples]
    truth = [i for _, i in examples]
    started = time.monotonic()
    results = classify(texts)
    seconds = time.monotonic() - started
    predicted = [r.intent for r in results]
    labels = sorted(set(truth) | set(predicted))
    table = classification_report(truth, predicted, labels=labels, digits=3, zero_division=0)
    pairs = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)
    misses = [
        (t, r.intent, r.confidence, x) for x, t, r in zip(texts, truth, results, strict=True) if r.intent != t
    ]
    return Report(
        name=name,
        n=len(examples),
        accuracy=sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(examples),
        abstained=predicted.count(FALLBACK_INTENT),
        per_intent=table,
        confusions=[(t, p, c) for (t, p), c in pairs.most_common()],
        misses=misses,
        seconds=seconds,
    )


def rasa_classifier(url: str, token: str, timeout_s: float = 10.0) -> Classify:
    """Straight HTTP to Rasa, no fallback: an outage must fail the evaluation, not hide in it."""

    def classify(texts: list[str]) -> list[NluResult]:
        with httpx.Client(timeout=timeout_s) as http:
            out = []
            for text in texts:
                r = http.post(f"{url.rstrip('/')}/model/parse", params={"token": token}, json={"text": text})
                r.raise_for_status()
                out.append(result_from_rasa(r.json()))
            return out

    return classify


def run(settings: NluSettings | None = None, *, with_rasa: bool = True) -> list[Report]:
    """Evaluates the fallback and Rasa (the running server, else a temporary one on a free port)."""
    from nlu import rasa_service

    settings = settings or get_settings()
    examples = load(settings.heldout_file).examples
    fallback = get_fallback()
    reports = [evaluate("fallback (TF-IDF + e5, in-app)", fallback.parse_many, examples)]
    if not with_rasa:
        return reports
    with ExitStack() as stack:
        url, token = settings.rasa_url, settings.token()
        if not rasa_service.is_up(url, token):
            model = rasa_service.train(settings)
            server = stack.enter_context(rasa_service.serve(model, settings, port=rasa_service.free_port()))
            url = server.url
        reports.insert(0, evaluate("rasa (HTTP)", rasa_classifier(url, token), examples))
    return reports
