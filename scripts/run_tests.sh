#!/usr/bin/env bash
# The whole test suite, on SQLite and PostgreSQL (tests marked for both run twice).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2
# PostgreSQL runs on these machines (trust auth, database test); start it if it stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null || true
fi
export KABASHOAX_TEST_POSTGRES_URL="${KABASHOAX_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
.venv/bin/ruff check .
# Types of bot/, knowledge_base/, fact_team_console/ ([tool.mypy] in pyproject.toml; cache in .mypy_cache).
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
