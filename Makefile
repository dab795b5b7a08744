# Folio: `make run` starts the whole stack on its embedded default, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
# Test processes (pytest-xdist): each starts its own Redis, PostgreSQL and Celery worker.
# Most tests wait on servers and workers, so two halve the time even on two cores.
TEST_PROCESSES ?= 2
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install Folio with its dev tools

run: install  ## migrate, seed demo data once, start redis, web, worker and beat; Ctrl-C stops all
	@mkdir -p var
	$(BIN)/flask --app api db upgrade
	$(BIN)/flask --app api seed-demo
	@echo ""
	@echo "  Folio is starting on http://127.0.0.1:$(PORT)  (health: /health/ready, API: /api/books, jobs: /api/jobs)"
	@echo "  demo login: demo@folio.test / demo-password"
	@echo ""
	$(BIN)/honcho -f Procfile.dev start --port $(PORT)

lint: install  ## format check, lint, types, import contract
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install lint  ## lint, then the whole suite on SQLite and PostgreSQL with branch coverage
	$(BIN)/pytest -n $(TEST_PROCESSES) --cov --cov-report=term --durations=15

bench: install  ## benchmarks; record their output in bench/RESULTS.md
	$(BIN)/python -m bench.cursor_depth
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.limits
	$(BIN)/python -m bench.cache

clean:
	rm -rf var/bench .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
