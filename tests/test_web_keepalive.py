"""`kabashoax web` keeps an idle keep-alive connection open longer than its clients do.

Clients (Telegram's webhook client, httpx, a reverse proxy) reuse a connection until their own idle
timeout; a server that closes it first, at the moment a client sends on it, makes that request fail
(`bench.bench_scale` at 100 chats lost about one in 2,000 so with uvicorn's 5 s default).
"""

from __future__ import annotations

import http.client
import time
from pathlib import Path

import pytest

from tests.helpers.procs import Proc, free_port, healthy, service_env, wait_for

pytestmark = pytest.mark.slow


def health(conn: http.client.HTTPConnection) -> int:
    """GET /health on this connection (http.client reuses it; it raises if the server closed it)."""
    conn.request("GET", "/health")
    response = conn.getresponse()
    response.read()
    return response.status


def test_an_idle_connection_outlives_a_clients_five_second_keepalive(tmp_path: Path) -> None:
    env = service_env(tmp_path, f"sqlite:///{tmp_path / 'kabashoax.db'}")
    port = free_port()
    web = Proc("web", ["web", "--port", str(port)], env, tmp_path / "web.log").start()
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), 240, "the web process", web)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            assert health(conn) == 200
            opened = conn.sock
            time.sleep(6.5)  # idle past httpx's (and uvicorn's default) 5 s
            assert health(conn) == 200
            assert conn.sock is opened  # the same connection served both
        finally:
            conn.close()
    finally:
        web.stop()
