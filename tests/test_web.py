"""The composed web app: nothing but login and health without a staff session."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from kabashoax.web import create_app


def test_composed_app_refuses_everything_without_login(app_env: Path) -> None:
    client = TestClient(create_app(), follow_redirects=False)
    assert client.get("/health").status_code == 200
    assert client.get("/login").status_code == 200
    for path in ("/", "/openapi.json", "/docs", "/coba-bot", "/dashboard", "/audit"):
        r = client.get(path)
        assert r.status_code in (302, 303, 401, 404), (path, r.status_code)
        assert r.status_code != 200
    assert client.post("/webhooks/telegram", json={}).status_code == 403
