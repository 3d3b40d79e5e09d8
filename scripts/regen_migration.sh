#!/usr/bin/env bash
# Pre-release: the schema is one initial migration, regenerated from models.py after a change.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f knowledge_base/migrations/versions/0001_initial_schema.py
KABASHOAX_DATA_DIR="$tmp" DATABASE_URL= .venv/bin/python -c "
from alembic import command
from knowledge_base.db import alembic_config
command.revision(alembic_config(), message='initial schema', autogenerate=True, rev_id='0001')
" >/dev/null
.venv/bin/ruff format -q knowledge_base/migrations/versions/0001_initial_schema.py
rm -rf "$tmp"
echo "regenerated knowledge_base/migrations/versions/0001_initial_schema.py"
