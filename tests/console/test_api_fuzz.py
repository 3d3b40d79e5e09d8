"""Schemathesis against the console's JSON API, logged in as an admin: no input may cause a 500."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlmodel import Session

from fact_team_console.settings import get_console_settings
from fact_team_console.web import install
from knowledge_base.db import get_session
from knowledge_base.models import StaffUser
from tests.console.conftest import login, make_claim


@pytest.fixture
def api_schema(session: Session, staff: dict[str, StaffUser]) -> schemathesis.BaseSchema:
    """The console on an app that serves its OpenAPI document (the product's app does not)."""
    app = FastAPI(openapi_url="/openapi.json")
    install(app)
    app.dependency_overrides[get_session] = lambda: session
    for i, text in enumerate(["Air PDAM Kupang tercemar racun", "Bantuan tunai Rp 5 juta lewat tautan"]):
        make_claim(session, text, asks=i + 1)
    with TestClient(app, follow_redirects=False) as client:
        token = login(client, "admin")
        app.state.auth = {"cookies": dict(client.cookies), "headers": {"X-CSRF-Token": token}}
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_console_api_never_answers_500(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, fuzzed; driven by hand because schemathesis' lazy fixture fails on pytest 9."""
    auth = api_schema.app.state.auth
    checks = [not_a_server_error, response_schema_conformance]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=auth["headers"], cookies=auth["cookies"], checks=checks)

        fuzz()


def test_the_api_is_documented(api_schema: schemathesis.BaseSchema) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert {"/api/tickets", "/api/tickets/{claim_id}", "/api/tickets/{claim_id}/notes", "/api/stats"} <= paths
    assert not any(
        p.startswith(("/login", "/tickets", "/users")) for p in paths
    )  # HTML routes are tested directly
    assert get_console_settings().queue_page_size > 0
