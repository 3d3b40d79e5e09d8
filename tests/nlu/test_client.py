"""The client when Rasa is missing, hung or broken: it answers from the fallback, fast, and says so."""

from __future__ import annotations

import http.server
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from nlu.breaker import State
from nlu.client import NluClient
from nlu.fallback import FallbackClassifier
from nlu.rasa_service import free_port

from .conftest import BlackHole, make_settings

TEXT = "tolong cek, ada pesan di grup WA katanya PDAM mau matikan air seminggu, betul ko?"


@pytest.fixture
def client_for(fallback: FallbackClassifier, tmp_path) -> Iterator[Callable[..., NluClient]]:
    """Makes clients against a given URL, closing them after the test."""
    made: list[NluClient] = []

    def make(url: str, **overrides: object) -> NluClient:
        made.append(NluClient(make_settings(tmp_path, rasa_url=url, **overrides), fallback=lambda: fallback))
        return made[-1]

    yield make
    for client in made:
        client.close()


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_nothing_listening_falls_back_at_once(client_for: Callable[..., NluClient]) -> None:
    client = client_for(f"http://127.0.0.1:{free_port()}")
    before = _metric("kabashoax_nlu_parsed_total", source="fallback")
    started = time.monotonic()
    result = client.parse_sync(TEXT)
    assert (result.source, result.intent) == ("fallback", "check_claim")
    assert time.monotonic() - started < 2.0
    assert _metric("kabashoax_nlu_parsed_total", source="fallback") == before + 1


def test_hung_rasa_costs_one_timeout_then_falls_back(
    client_for: Callable[..., NluClient], fallback: FallbackClassifier, black_hole: BlackHole
) -> None:
    client = client_for(f"http://127.0.0.1:{black_hole.port}", timeout_s=0.3)
    fallback.parse(TEXT)  # warm the e5 engine so the timing below is the HTTP timeout's
    before = _metric("kabashoax_nlu_rasa_errors_total", reason="timeout")
    started = time.monotonic()
    result = client.parse_sync(TEXT)
    elapsed = time.monotonic() - started
    assert result.source == "fallback"
    assert 0.3 <= elapsed < 1.5
    assert _metric("kabashoax_nlu_rasa_errors_total", reason="timeout") == before + 1


def test_breaker_opens_after_n_failures_and_stops_calling_rasa(
    client_for: Callable[..., NluClient], black_hole: BlackHole
) -> None:
    client = client_for(f"http://127.0.0.1:{black_hole.port}", timeout_s=1.0, breaker_failures=2)
    for _ in range(2):
        assert client.parse_sync(TEXT).source == "fallback"
    assert client.breaker.state is State.OPEN
    connections = black_hole.accepted
    started = time.monotonic()
    for _ in range(5):
        assert client.parse_sync(TEXT).source == "fallback"
    assert black_hole.accepted == connections, "an open breaker must not touch Rasa"
    assert time.monotonic() - started < 4.0, "five calls without waiting for the 1 s timeout"


class _Broken(http.server.BaseHTTPRequestHandler):
    """Answers like a Rasa that is up but broken (500s, or 200 with a body that is not a parse result)."""

    replies: list[tuple[int, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.replies.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_rasa() -> Iterator[tuple[str, list]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Broken.replies
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b'{"error": "boom"}', "http_500"),
        (200, b"<html>", "bad_response"),
        (200, b'{"x": 1}', "bad_response"),
    ],
)
def test_broken_answers_fall_back_and_are_counted(
    client_for: Callable[..., NluClient],
    broken_rasa: tuple[str, list],
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    url, replies = broken_rasa
    replies[:] = [(status, body)]
    before = _metric("kabashoax_nlu_rasa_errors_total", reason=reason)
    with caplog.at_level(logging.WARNING, logger="nlu.client"):
        result = client_for(url).parse_sync(TEXT)
    assert result.source == "fallback"
    assert _metric("kabashoax_nlu_rasa_errors_total", reason=reason) == before + 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"reason={reason}" in line and "fallback" in line
    assert "PDAM" not in line and "test-token" not in line, "no message body or token in logs"


def test_blank_text_never_reaches_rasa(client_for: Callable[..., NluClient], black_hole: BlackHole) -> None:
    client = client_for(f"http://127.0.0.1:{black_hole.port}")
    assert client.parse_sync("  ").intent == "nlu_fallback"
    assert black_hole.accepted == 0
