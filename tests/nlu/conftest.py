"""Fixtures of the NLU suite: isolated settings, the real fallback classifier, the real Rasa server."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from nlu import rasa_service
from nlu.fallback import FallbackClassifier, load_or_train
from nlu.settings import NluSettings

TOKEN = "test-token-not-secret"


def make_settings(work: Path, **overrides: object) -> NluSettings:
    values: dict[str, object] = {"data_dir": work, "rasa_token": TOKEN, "timeout_s": 0.5}
    values.update(overrides)
    return NluSettings(**values)


@pytest.fixture(scope="session")
def nlu_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu")


@pytest.fixture(scope="session")
def fallback(nlu_work: Path) -> FallbackClassifier:
    """The real fallback, trained once per session from nlu/data/nlu.yml."""
    return load_or_train(make_settings(nlu_work))


class BlackHole:
    """A TCP server that accepts connections and never answers: a hung Rasa."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture(scope="session")
def rasa_settings(nlu_work: Path) -> NluSettings:
    return make_settings(nlu_work, rasa_url=f"http://127.0.0.1:{rasa_service.free_port()}", timeout_s=5.0)


@pytest.fixture(scope="session", autouse=True)
def _rasa_training(request: pytest.FixtureRequest, rasa_settings: NluSettings) -> Iterator[Future | None]:
    """Trains Rasa (a subprocess) in the background while the in-app tests run: two cores, half the wait."""
    wanted = any(item.get_closest_marker("rasa") for item in request.session.items)
    if not wanted or not rasa_service.is_installed(rasa_settings):
        yield None
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(rasa_service.train, rasa_settings)


@pytest.fixture(scope="session")
def rasa_model(_rasa_training: Future | None, rasa_settings: NluSettings) -> Path:
    if _rasa_training is None:
        pytest.skip(f"Rasa virtualenv absent at {rasa_settings.rasa_venv} (make install-rasa)")
    return _rasa_training.result()


@pytest.fixture(scope="session")
def rasa_server(rasa_model: Path, rasa_settings: NluSettings) -> Iterator[rasa_service.RasaServer]:
    """One real Rasa server for the whole session, on a free loopback port."""
    server = rasa_service.serve(rasa_model, rasa_settings)
    yield server
    server.stop()
