# botfleet — every operator and developer command. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Exports DATABASE_URL/REDIS_URL of servers that answer (starting throwaway ones when needed).
SERVICES := services_env="$$(scripts/services.sh up)" && eval "$$services_env"

.PHONY: help install run test lint typecheck migrate migrate-dry-run services-up services-down i18n bench clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "botfleet needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
		echo "python3-venv is missing; installing it"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; \
		else sudo -n apt-get install -y -qq python3-venv; fi && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install botfleet with pinned dependencies

run: install ## run the platform on this machine (what exists so far: services, migrations, Telegram emulator)
	@$(SERVICES) && $(PY) -m scripts.migrate && \
		echo "PostgreSQL: $$DATABASE_URL  Redis: $$REDIS_URL" && \
		$(PY) -m telegram_emulator --host 127.0.0.1 --port $${EMULATOR_PORT:-8081}

test: install ## run the whole test suite against real PostgreSQL and Redis
	@$(SERVICES) && $(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

typecheck: install ## mypy only
	$(VENV)/bin/mypy .

migrate: install ## apply control + tenant migrations (DATABASE_URL, else the local throwaway server)
	@$(SERVICES) && $(PY) -m scripts.migrate

migrate-dry-run: install ## list pending migrations without applying them
	@$(SERVICES) && $(PY) -m scripts.migrate --dry-run

services-up: ## start throwaway PostgreSQL and Redis (when DATABASE_URL/REDIS_URL don't answer)
	@scripts/services.sh up

services-down: ## stop the throwaway PostgreSQL and Redis
	@scripts/services.sh down

i18n: install ## extract message ids, update the .po catalogs and compile .mo (then translate ru)
	$(PY) -m scripts.i18n update

bench: install ## run every benchmark in bench/ (prints per-operation figures)
	@$(SERVICES) && for b in bench/bench_*.py; do m=$${b%.py}; $(PY) -m $${m//\//.} || exit 1; done

clean: ## remove caches and build leftovers (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
