"""The bot's NLU client: Rasa over HTTP with a short timeout and a circuit breaker, else the in-app fallback.

Whatever happens to Rasa (not installed, down, hanging, answering garbage), `parse_sync` returns a
result: the bot never stops answering. Results say where they came from (`source`), and so do logs
and metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

import httpx
from prometheus_client import Counter, Histogram

from nlu.breaker import CircuitBreaker
from nlu.entities import without_overlaps
from nlu.fallback import FallbackClassifier, get_fallback
from nlu.result import FALLBACK_INTENT, NluResult
from nlu.settings import NluSettings, get_settings

__all__ = ["NluClient", "NluResult", "RasaUnavailable", "get_client"]

log = logging.getLogger(__name__)

PARSED = Counter("kabashoax_nlu_parsed_total", "Messages classified, by classifier", ["source"])
RASA_ERRORS = Counter("kabashoax_nlu_rasa_errors_total", "Failed Rasa calls, by reason", ["reason"])
LATENCY = Histogram(
    "kabashoax_nlu_parse_seconds",
    "Time to classify one message, by classifier",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class RasaUnavailable(Exception):
    """Rasa did not give a usable answer; `reason` is a short label for logs and metrics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def result_from_rasa(body: object) -> NluResult:
    """Maps Rasa's /model/parse JSON to our result; raises RasaUnavailable on an unexpected shape."""
    try:
        if not isinstance(body, dict):
            raise TypeError(f"body is a {type(body).__name__}")
        intent = body["intent"]
        name, confidence = intent["name"], float(intent["confidence"])
        ranking = [
            {"name": r["name"], "confidence": float(r["confidence"])} for r in body.get("intent_ranking", [])
        ]
        entities = without_overlaps(
            [
                {"entity": e["entity"], "value": e["value"], "start": int(e["start"]), "end": int(e["end"])}
                for e in body.get("entities", [])
            ]
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RasaUnavailable("bad_response", repr(exc)) from exc
    return NluResult(name or FALLBACK_INTENT, confidence, ranking, entities, "rasa")


class NluClient:
    """`parse_sync` (the bot core, in its worker thread, and the CLI) falls back instead of failing."""

    def __init__(
        self,
        settings: NluSettings | None = None,
        *,
        fallback: Callable[[], FallbackClassifier] = get_fallback,
        breaker: CircuitBreaker | None = None,
        use_rasa: bool = True,
    ) -> None:
        self.settings = settings or get_settings()
        self.use_rasa = use_rasa
        s = self.settings
        self.breaker = breaker or CircuitBreaker(s.breaker_failures, s.breaker_cooldown_s)
        self._fallback = fallback
        self._sync: httpx.Client | None = None

    # -- the entry point -----------------------------------------------------------------------------

    def parse_sync(self, text: str) -> NluResult:
        text = text[: self.settings.max_chars]
        if self.use_rasa and text.strip() and self.breaker.allow():
            try:
                result = self._rasa_sync(text)
            except RasaUnavailable as exc:
                self._failed(exc)
            else:
                return self._succeeded(result)
        return self._from_fallback(text)

    # -- Rasa over HTTP --------------------------------------------------------------------------------

    def _request_args(self, text: str) -> dict:
        return {
            "url": f"{self.settings.rasa_url.rstrip('/')}/model/parse",
            "params": {"token": self.settings.token()},
            "json": {"text": text},
        }

    @staticmethod
    def _check(response: httpx.Response) -> NluResult:
        if response.status_code != 200:
            raise RasaUnavailable(f"http_{response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RasaUnavailable("bad_response", "not JSON") from exc
        return result_from_rasa(body)

    def _rasa_sync(self, text: str) -> NluResult:
        if self._sync is None:
            self._sync = httpx.Client(timeout=self.settings.timeout_s)
        with LATENCY.labels("rasa").time():
            try:
                return self._check(self._sync.post(**self._request_args(text)))
            except httpx.TimeoutException as exc:
                raise RasaUnavailable("timeout", type(exc).__name__) from exc
            except httpx.HTTPError as exc:
                raise RasaUnavailable("unreachable", type(exc).__name__) from exc

    # -- bookkeeping -----------------------------------------------------------------------------------

    def _succeeded(self, result: NluResult) -> NluResult:
        self.breaker.record_success()
        PARSED.labels("rasa").inc()
        return result

    def _failed(self, exc: RasaUnavailable) -> None:
        self.breaker.record_failure()
        RASA_ERRORS.labels(exc.reason).inc()
        log.warning(
            "nlu.rasa_failed reason=%s breaker=%s url=%s -> using fallback classifier",
            exc.reason,
            self.breaker.state,
            self.settings.rasa_url,
        )

    def _from_fallback(self, text: str) -> NluResult:
        with LATENCY.labels("fallback").time():
            result = self._fallback().parse(text)
        PARSED.labels("fallback").inc()
        log.debug("nlu.fallback intent=%s confidence=%.2f", result.intent, result.confidence)
        return result

    def close(self) -> None:
        """Closes the pooled HTTP connections of `parse_sync`."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None


@lru_cache
def get_client() -> NluClient:
    """The process-wide client (a Rasa that is not running costs one refused connection per cool-down)."""
    return NluClient()
