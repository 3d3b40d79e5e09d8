"""The real Rasa: validated project, trained model, server over HTTP on loopback with a token.

One server for the module (trained in the background by conftest); the last test kills it.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from nlu import cli, rasa_service
from nlu.breaker import CircuitBreaker, State
from nlu.client import NluClient
from nlu.evaluate import evaluate, rasa_classifier
from nlu.fallback import FallbackClassifier
from nlu.settings import PROJECT_DIR, NluSettings
from nlu.training_data import load

from .conftest import TOKEN

pytestmark = pytest.mark.rasa


@pytest.fixture(scope="module")
def client(
    rasa_server: rasa_service.RasaServer, rasa_settings: NluSettings, fallback: FallbackClassifier
) -> Iterator[NluClient]:
    client = NluClient(rasa_settings, fallback=lambda: fallback)
    yield client
    client.close()


def test_rasa_data_validate_passes_with_fail_on_warnings(rasa_settings: NluSettings) -> None:
    if not rasa_service.is_installed(rasa_settings):
        pytest.skip("Rasa virtualenv absent")
    ok, output = rasa_service.validate(rasa_settings)
    assert ok, output


def test_training_is_cached_by_config_and_data(rasa_model: Path, rasa_settings: NluSettings) -> None:
    assert rasa_model.name == f"nlu-{rasa_service.model_key(rasa_settings)}.tar.gz"
    mtime = rasa_model.stat().st_mtime
    started = time.monotonic()
    assert rasa_service.train(rasa_settings) == rasa_model
    assert time.monotonic() - started < 1.0 and rasa_model.stat().st_mtime == mtime


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("selamat pagi kaka", "greet"),
        ("kapan air PDAM di Oebufu jalan lagi?", "ask_info"),
        ("tolong cek, ini pesan dari grup WA: BESOK KUPANG GEMPA BESAR SEBARKAN!!", "check_claim"),
        ("beta mau langganan ringkasan berita tiap pagi", "subscribe_digest"),
        ("hapus beta pung data sa", "delete_my_data"),
        ("thanks a lot", "thanks"),
    ],
)
def test_classifies_over_http(client: NluClient, text: str, intent: str) -> None:
    result = client.parse_sync(text)
    assert (result.source, result.intent) == ("rasa", intent)
    assert result.ranking and result.ranking[0]["name"] == intent


def test_extracts_entities(client: NluClient) -> None:
    result = client.parse_sync("betul ko PLN kirim link https://pln-promo.xyz/klaim deng nomor 081377788899?")
    assert result.source == "rasa"
    assert {(e["entity"], e["value"]) for e in result.entities} >= {
        ("organisation", "PLN"),
        ("url", "https://pln-promo.xyz/klaim"),
        ("phone", "081377788899"),
    }


def test_heldout_accuracy_floor(rasa_server: rasa_service.RasaServer) -> None:
    examples = load(PROJECT_DIR / "eval" / "heldout.yml").examples
    report = evaluate("rasa", rasa_classifier(rasa_server.url, rasa_server.token), examples)
    assert report.accuracy >= 0.90, report.render(show_misses=True)


def test_parse_needs_the_token(rasa_server: rasa_service.RasaServer) -> None:
    r = httpx.post(f"{rasa_server.url}/model/parse", json={"text": "halo"}, timeout=5)
    assert r.status_code == 401
    r = httpx.post(
        f"{rasa_server.url}/model/parse", params={"token": "wrong"}, json={"text": "halo"}, timeout=5
    )
    assert r.status_code == 401


def _outward_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_listens_on_loopback_only(rasa_server: rasa_service.RasaServer) -> None:
    ip = _outward_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    port = httpx.URL(rasa_server.url).port
    with pytest.raises(OSError), socket.create_connection((ip, port), timeout=2):
        pass


def test_cli_parse_json_shape(
    rasa_server: rasa_service.RasaServer, monkeypatch: pytest.MonkeyPatch, nlu_work
) -> None:
    monkeypatch.setenv("RASA_URL", rasa_server.url)
    monkeypatch.setenv("RASA_TOKEN", TOKEN)
    monkeypatch.setenv("NLU_DATA_DIR", str(nlu_work))
    from nlu.settings import get_settings

    get_settings.cache_clear()
    app = typer.Typer()
    cli.register(app)
    try:
        out = CliRunner().invoke(app, ["nlu", "parse", "makasih banyak kaka", "--json"])
        lines = CliRunner().invoke(app, ["nlu", "parse"], input="halo\n\nhapus data saya\n")
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert set(body) == {"intent", "confidence", "ranking", "entities", "source"}
    assert (body["intent"], body["source"]) == ("thanks", "rasa")
    assert [json.loads(x)["intent"] for x in lines.stdout.splitlines()] == ["greet", "delete_my_data"]


class _Forwarder(socketserver.ThreadingTCPServer):
    """A TCP relay to the real Rasa that can be switched off and on: an outage that heals."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = False
        super().__init__(("127.0.0.1", 0), _Relay)


class _Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        if not self.server.up:  # type: ignore[attr-defined]
            return  # close at once: the client sees a dropped connection
        with socket.create_connection(self.server.target, timeout=10) as upstream:  # type: ignore[attr-defined]
            threading.Thread(target=_pipe, args=(self.request, upstream), daemon=True).start()
            _pipe(upstream, self.request)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass


@pytest.fixture
def relay(rasa_server: rasa_service.RasaServer) -> Iterator[_Forwarder]:
    url = httpx.URL(rasa_server.url)
    server = _Forwarder((url.host, url.port))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_breaker_recovers_when_rasa_comes_back(
    relay: _Forwarder, rasa_settings: NluSettings, fallback: FallbackClassifier
) -> None:
    now = [0.0]
    settings = rasa_settings.model_copy(update={"rasa_url": f"http://127.0.0.1:{relay.server_address[1]}"})
    client = NluClient(
        settings, fallback=lambda: fallback, breaker=CircuitBreaker(2, cooldown_s=30, clock=lambda: now[0])
    )
    client._sync = httpx.Client(timeout=5, headers={"Connection": "close"})  # one request per connection
    assert client.parse_sync("halo").source == "fallback"
    assert client.parse_sync("halo").source == "fallback"
    assert client.breaker.state is State.OPEN
    relay.up = True
    assert client.parse_sync("halo").source == "fallback", "still cooling down"
    now[0] += 30
    assert client.breaker.state is State.HALF_OPEN
    assert client.parse_sync("halo").source == "rasa"
    assert client.breaker.state is State.CLOSED
    client.close()


def test_killed_server_falls_back(
    rasa_server: rasa_service.RasaServer, client: NluClient, fallback: FallbackClassifier
) -> None:
    assert client.parse_sync("selamat malam").source == "rasa"
    rasa_server.process.kill()
    rasa_server.process.wait()
    result = client.parse_sync("selamat malam")
    assert (result.source, result.intent) == ("fallback", "greet")
