# TaskScheduler — `make` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BIND ?= 127.0.0.1:8080
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run services test lint fmt typecheck bench bench-quick clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/activate

install: $(BIN)/activate  ## create .venv and install the project with its dev tools

run: install  ## the standalone scheduler + worker + shipped plugins on SQLite (BIND=host:port)
	$(BIN)/taskconsole db upgrade
	$(BIN)/taskscheduler standalone --bind $(BIND)

services:  ## start (or install) MariaDB and Redis for the tests
	bash .ci/services

test: install services lint typecheck  ## install, start MariaDB and Redis, lint, typecheck, run the suite
	TASK_TEST_REQUIRE_SERVICES=1 $(BIN)/pytest $(PYTEST_ARGS)

lint: install  ## ruff check, format check, and the import contracts (the layers, in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: install  ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install  ## mypy
	$(BIN)/mypy taskscheduler taskworker taskconsole plugins

$(BIN)/celery: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e ".[dev,bench]"

bench: install services $(BIN)/celery  ## TaskScheduler and Celery side by side, and the scenarios of bench/README.md (about 45 min)
	$(BIN)/python -m bench.compare
	$(BIN)/python -m bench.timed
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.soak

bench-quick: install services $(BIN)/celery  ## the same, small and once (a few minutes)
	$(BIN)/python -m bench.compare --quick
	$(BIN)/python -m bench.timed --quick
	$(BIN)/python -m bench.scale --quick
	$(BIN)/python -m bench.soak --quick

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
