"""`kabashoax run` as an operator starts it: offline, fresh data dir, serving health, login and search."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_serves_console_and_webhooks_on_a_fresh_offline_machine(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "KABASHOAX_DATA_DIR": str(tmp_path / "var"), "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    cmd = [sys.executable, "-m", "kabashoax.cli", "run", "--port", str(port), "--no-rasa", "--no-poll"]
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail("kabashoax run did not answer /health in 240 s")
        home = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=False)
        assert home.status_code in (302, 303) and "/login" in home.headers["location"]
        assert httpx.get(f"http://127.0.0.1:{port}/login").status_code == 200
        # Webhooks are mounted and refuse unsigned requests.
        assert httpx.post(f"http://127.0.0.1:{port}/webhooks/telegram", json={}).status_code == 403
        assert httpx.post(f"http://127.0.0.1:{port}/webhooks/whatsapp", json={}).status_code == 403
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    # The bundled sample feeds were ingested and indexed: the knowledge base answers a search.
    out = subprocess.run(
        [sys.executable, "-m", "kabashoax.cli", "search", "vaksin", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"outlet"' in out.stdout and '"url"' in out.stdout


@pytest.mark.rasa
def test_run_starts_rasa_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    from nlu.rasa_service import is_installed, is_up
    from nlu.settings import NluSettings

    if not is_installed(NluSettings()):
        pytest.skip("the Rasa virtualenv (.venv-rasa) is not installed")
    port, rasa_port = _free_port(), _free_port()
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    env = {
        **os.environ,
        "KABASHOAX_DATA_DIR": str(tmp_path / "var"),
        "RASA_URL": rasa_url,
        "RASA_TOKEN": "run-test-token",
    }
    env.pop("DATABASE_URL", None)
    cmd = [sys.executable, "-m", "kabashoax.cli", "run", "--port", str(port), "--no-ingest", "--no-notifier"]
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not is_up(rasa_url, "run-test-token"):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Rasa did not come up under kabashoax run"
            time.sleep(2)
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
    deadline = time.monotonic() + 30
    while is_up(rasa_url, "run-test-token") and time.monotonic() < deadline:
        time.sleep(1)
    assert not is_up(rasa_url, "run-test-token"), "Rasa outlived kabashoax run"
