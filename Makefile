# Two commands do everything on a fresh machine:
#   make run    set up, migrate, ingest the bundled sources and serve bot + console + Rasa
#   make test   set up and run the whole test suite (what .ci/run calls)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
KABASHOAX := $(VENV)/bin/kabashoax

.PHONY: install install-app install-rasa install-browser run test lint bench

install:
	./scripts/setup_env.sh all

install-app:
	./scripts/setup_env.sh app

install-rasa:
	./scripts/setup_env.sh rasa

install-browser:
	./scripts/setup_env.sh browser

run: install
	$(KABASHOAX) run

test: install
	./scripts/run_tests.sh

migration: install-app
	./scripts/new_migration.sh "$(MESSAGE)"

lint: install-app
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) -m bench.run_all
